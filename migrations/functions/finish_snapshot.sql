-- Ends a generating snapshot the way the outcome says, with its event, in
-- one transaction:
--   ready  {manifest_checksum}: every file is written and synced; the
--          exported snapshot is let go (snapshot_name NULL: its holder
--          ends), the expiry is queued for expires_at (task snapshot_expire)
--          and the watch over the slots runs (task snapshot_watch).
--   failed {error, hint}: the slot and the publication go (drop_snapshot_slot);
--          the agent removes the files it wrote. Also for a ready snapshot
--          whose slot was lost (snapshot_watch).
-- A snapshot that is no longer generating (deleted meanwhile) is refused
-- for ready and left as it is for failed.
CREATE OR REPLACE FUNCTION steep_repl.finish_snapshot(p_snapshot_id text, p_outcome text, p_details jsonb DEFAULT '{}')
RETURNS steep_repl.snapshots LANGUAGE plpgsql AS $$
DECLARE
  v_row steep_repl.snapshots := steep_repl.get_snapshot(p_snapshot_id);
  v_details jsonb := coalesce(p_details, '{}');
  v_dropped jsonb;
  v_totals record;
BEGIN
  SELECT * INTO v_row FROM steep_repl.snapshots WHERE snapshot_id = p_snapshot_id FOR UPDATE;
  CASE p_outcome
  WHEN 'ready' THEN
    IF v_row.state <> 'generating' THEN
      RAISE EXCEPTION 'snapshot % is %, not generating', p_snapshot_id, v_row.state USING ERRCODE = 'SR003';
    END IF;
    IF EXISTS (SELECT 1 FROM steep_repl.snapshot_parts WHERE snapshot_id = p_snapshot_id AND state <> 'done') THEN
      RAISE EXCEPTION 'snapshot % has parts not written yet', p_snapshot_id USING ERRCODE = 'SR003';
    END IF;
    UPDATE steep_repl.snapshots
       SET state = 'ready', manifest_checksum = v_details ->> 'manifest_checksum', snapshot_name = NULL, workers_active = 0,
           eta_seconds = 0, error = NULL, hint = NULL, finished_at = now(), updated_at = now()
     WHERE snapshot_id = p_snapshot_id
    RETURNING * INTO v_row;
    PERFORM graphile_worker.add_job('snapshot_expire', json_build_object('snapshot_id', p_snapshot_id),
                                    run_at => v_row.expires_at, job_key => 'snapshot_expire:' || p_snapshot_id, max_attempts => 5);
    PERFORM graphile_worker.add_job('snapshot_watch', '{}'::json, job_key => 'snapshot_watch', max_attempts => 5);
    SELECT * INTO v_totals FROM steep_repl.snapshot_totals(p_snapshot_id);
    PERFORM steep_repl.emit_event('snapshot.generated', v_row.source_node_id, jsonb_build_object(
      'snapshot_id', p_snapshot_id, 'output_dir', v_row.output_dir, 'consistent_lsn', v_row.consistent_lsn::text,
      'slot_name', v_row.slot_name, 'publication', v_row.publication, 'compression', v_row.compression,
      'tables', v_totals.tables_total, 'parts', v_totals.parts_total, 'rows', v_totals.rows_written,
      'raw_bytes', v_totals.bytes_written, 'stored_bytes', v_totals.bytes_stored,
      'seconds', round(extract(epoch FROM v_row.finished_at - v_row.created_at)::numeric, 3),
      'expires_at', v_row.expires_at, 'manifest_checksum', v_row.manifest_checksum));
  WHEN 'failed' THEN
    IF v_row.state NOT IN ('generating', 'ready') THEN
      RETURN v_row;
    END IF;
    v_dropped := steep_repl.drop_snapshot_slot(p_snapshot_id);
    UPDATE steep_repl.snapshots
       SET state = 'failed', error = coalesce(v_details ->> 'error', 'the generate failed'), hint = v_details ->> 'hint',
           snapshot_name = NULL, workers_active = 0, rows_per_second = NULL, bytes_per_second = NULL, eta_seconds = NULL,
           finished_at = coalesce(finished_at, now()), updated_at = now()
     WHERE snapshot_id = p_snapshot_id
    RETURNING * INTO v_row;
    PERFORM graphile_worker.remove_job('snapshot_expire:' || p_snapshot_id);
    PERFORM steep_repl.emit_event('snapshot.failed', v_row.source_node_id, jsonb_build_object(
      'snapshot_id', p_snapshot_id, 'error', left(v_row.error, 2000), 'hint', left(v_row.hint, 1000), 'output_dir', v_row.output_dir)
      || v_dropped || (v_details - 'error' - 'hint'));
  ELSE
    RAISE EXCEPTION 'unknown snapshot outcome %', quote_nullable(p_outcome)
      USING ERRCODE = 'SR004', HINT = 'outcomes: ready, failed';
  END CASE;
  RETURN v_row;
END $$;
