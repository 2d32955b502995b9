-- The slot was made with its exported snapshot (by the generate's holder):
-- its consistent point, where every apply's stream starts, and the
-- snapshot the parts are read on. Only while generating.
CREATE OR REPLACE FUNCTION steep_repl.record_snapshot_export(p_snapshot_id text, p_consistent_lsn pg_lsn, p_snapshot_name text)
RETURNS steep_repl.snapshots LANGUAGE plpgsql AS $$
DECLARE
  v_row steep_repl.snapshots;
BEGIN
  UPDATE steep_repl.snapshots SET consistent_lsn = p_consistent_lsn, snapshot_name = p_snapshot_name, updated_at = now()
   WHERE snapshot_id = p_snapshot_id AND state = 'generating'
  RETURNING * INTO v_row;
  IF v_row.snapshot_id IS NULL THEN
    RAISE EXCEPTION 'snapshot % is %, not generating', p_snapshot_id, (steep_repl.get_snapshot(p_snapshot_id)).state
      USING ERRCODE = 'SR003';
  END IF;
  RETURN v_row;
END $$;
