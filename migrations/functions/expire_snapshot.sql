-- The expiry of one snapshot, run by the source's agent at expires_at (task
-- snapshot_expire): its slot goes, and its publication unless applies are
-- in flight through it; the state becomes expired; the files stay (snapshot
-- delete removes them). A snapshot whose expires_at was moved later
-- (UPDATE steep_repl.snapshots SET expires_at = ...), or that is still
-- generating, is queued again. Returns what it did: gone (no such
-- snapshot), inactive (already failed, expired or deleted), rescheduled, expired.
CREATE OR REPLACE FUNCTION steep_repl.expire_snapshot(p_snapshot_id text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_row steep_repl.snapshots;
  v_dropped jsonb;
  v_at timestamptz;
BEGIN
  SELECT * INTO v_row FROM steep_repl.snapshots WHERE snapshot_id = p_snapshot_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN 'gone';
  END IF;
  IF v_row.state NOT IN ('generating', 'ready') THEN
    RETURN 'inactive';
  END IF;
  IF v_row.expires_at > now() OR v_row.state = 'generating' THEN
    v_at := greatest(v_row.expires_at, now() + interval '1 minute');
    PERFORM graphile_worker.add_job('snapshot_expire', json_build_object('snapshot_id', p_snapshot_id),
                                    run_at => CASE WHEN v_row.state = 'generating' THEN v_at ELSE v_row.expires_at END,
                                    job_key => 'snapshot_expire:' || p_snapshot_id, max_attempts => 5);
    RETURN 'rescheduled';
  END IF;
  v_dropped := steep_repl.drop_snapshot_slot(p_snapshot_id);
  UPDATE steep_repl.snapshots SET state = 'expired', snapshot_name = NULL, updated_at = now()
   WHERE snapshot_id = p_snapshot_id;
  PERFORM steep_repl.emit_event('snapshot.expired', v_row.source_node_id, jsonb_build_object(
    'snapshot_id', p_snapshot_id, 'output_dir', v_row.output_dir, 'created_at', v_row.created_at, 'expires_at', v_row.expires_at,
    'files_kept', true) || v_dropped);
  RETURN 'expired';
END $$;
