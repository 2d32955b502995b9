-- Run on the source: a snapshot is deleted. A generate still running is
-- told to stop (its job cancelled); the slot goes, and the publication
-- unless applies are in flight through it (then the last of them drops it,
-- and the result says so); the row stays as deleted so an apply can say
-- why; the agent removes the files the snapshot wrote (task
-- snapshot_remove_files: its own files only, then data/ and the directory
-- if they are empty). Deleting a deleted snapshot queues the file removal again.
CREATE OR REPLACE FUNCTION steep_repl.delete_snapshot(p_snapshot_id text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_row steep_repl.snapshots := steep_repl.get_snapshot(p_snapshot_id);
  v_was text;
  v_dropped jsonb := jsonb_build_object('slot_dropped', false, 'publication_dropped', false, 'applies_in_flight', '[]'::jsonb);
  v_job record;
  v_files_job bigint;
BEGIN
  SELECT * INTO v_row FROM steep_repl.snapshots WHERE snapshot_id = p_snapshot_id FOR UPDATE;
  v_was := v_row.state;
  IF v_was = 'generating' THEN
    SELECT j.id, j.locked_at INTO v_job FROM graphile_worker._private_jobs j WHERE j.key = 'snapshot_generate:' || p_snapshot_id;
    IF v_job.locked_at IS NOT NULL THEN
      PERFORM steep_repl.request_job_cancel(NULL, v_job.id);
    ELSIF v_job.id IS NOT NULL THEN
      PERFORM graphile_worker.remove_job('snapshot_generate:' || p_snapshot_id);
    END IF;
  END IF;
  IF v_was <> 'deleted' THEN
    v_dropped := steep_repl.drop_snapshot_slot(p_snapshot_id);
    UPDATE steep_repl.snapshots
       SET state = 'deleted', snapshot_name = NULL, workers_active = 0, rows_per_second = NULL, bytes_per_second = NULL,
           eta_seconds = NULL, finished_at = coalesce(finished_at, now()), updated_at = now()
     WHERE snapshot_id = p_snapshot_id;
    PERFORM graphile_worker.remove_job('snapshot_expire:' || p_snapshot_id);
  END IF;
  v_files_job := steep_repl.enqueue('snapshot_remove_files', jsonb_build_object('snapshot_id', p_snapshot_id),
                                    'snapshot_remove_files:' || p_snapshot_id, 5);
  PERFORM steep_repl.emit_event('snapshot.deleted', v_row.source_node_id, jsonb_build_object(
    'snapshot_id', p_snapshot_id, 'was', v_was, 'output_dir', v_row.output_dir, 'remove_files_job', v_files_job) || v_dropped);
  RETURN jsonb_build_object(
    'snapshot_id', p_snapshot_id,
    'state', 'deleted',
    'was', v_was,
    'output_dir', v_row.output_dir,
    'remove_files_job_id', v_files_job,
    'publication', v_row.publication,
    'publication_kept', jsonb_array_length(v_dropped -> 'applies_in_flight') > 0
                        AND EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = v_row.publication),
    'note', CASE WHEN jsonb_array_length(v_dropped -> 'applies_in_flight') > 0
                 THEN format('publication %s is kept while %s apply(ies) stream through it (%s); the last one to finish drops it',
                             v_row.publication, jsonb_array_length(v_dropped -> 'applies_in_flight'),
                             (SELECT string_agg(a ->> 'for_node', ', ') FROM jsonb_array_elements(v_dropped -> 'applies_in_flight') a))
            END) || v_dropped;
END $$;
