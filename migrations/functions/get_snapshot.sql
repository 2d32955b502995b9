-- The snapshot of that id, or an error that says which ones there are.
CREATE OR REPLACE FUNCTION steep_repl.get_snapshot(p_snapshot_id text) RETURNS steep_repl.snapshots
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_row steep_repl.snapshots;
BEGIN
  SELECT * INTO v_row FROM steep_repl.snapshots WHERE snapshot_id = p_snapshot_id;
  IF NOT FOUND THEN
    PERFORM steep_repl.unknown_snapshot(p_snapshot_id);
  END IF;
  RETURN v_row;
END $$;
