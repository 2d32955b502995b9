-- Stops the merge a node is in, returning at once. On node A's database
-- (where the run is; p_node may name either node of it): a run whose job
-- never started ends here, nothing having begun on the nodes; any other
-- gets cancel_requested_at (on the run and on A's progress row) and its job
-- is told, or, when no job is left to tell, one is queued: only A's agent
-- can remove what the merge made on both nodes (also for a run failed
-- because its job was gone while the nodes were still in it: reopened). On node B's database: its
-- progress row gets cancel_requested_at, which the job on A polls.
CREATE OR REPLACE FUNCTION steep_repl.cancel_merge(p_node text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_run steep_repl.merge_runs;
  v_job record;
  v_job_id bigint;
  v_progress steep_repl.init_progress;
  v_last steep_repl.merge_runs;
BEGIN
  PERFORM steep_repl.get_node(p_node);
  SELECT * INTO v_run FROM steep_repl.merge_runs
   WHERE (node_a = p_node OR node_b = p_node) AND state IN ('queued', 'running') ORDER BY merge_id DESC LIMIT 1;
  IF FOUND THEN
    -- the same lock as start_merge and finish_merge, then the run as it is now
    PERFORM 1 FROM steep_repl.nodes WHERE node_id = v_run.node_a FOR UPDATE;
    SELECT * INTO v_run FROM steep_repl.merge_runs WHERE merge_id = v_run.merge_id FOR UPDATE;
  ELSE
    -- Node A still in a merge whose run was failed because its job was gone
    -- (start_merge does that): the run is reopened for a job that cleans up.
    SELECT * INTO v_progress FROM steep_repl.init_progress WHERE node_id = p_node;
    IF v_progress.merge ->> 'role' = 'a' AND v_progress.merge ->> 'outcome' IS NULL THEN
      PERFORM 1 FROM steep_repl.nodes WHERE node_id = p_node FOR UPDATE;
      UPDATE steep_repl.merge_runs
         SET state = 'running', finished_at = NULL, updated_at = now()
       WHERE merge_id = (v_progress.merge ->> 'merge_id')::bigint AND node_a = p_node AND state = 'failed'
      RETURNING * INTO v_run;
    END IF;
  END IF;
  IF v_run.state IN ('queued', 'running') THEN
    SELECT * INTO v_job FROM steep_repl.merge_job(v_run.node_a) j WHERE j.job_id = v_run.job_id;
    IF v_run.state = 'queued' AND (v_job.job_id IS NULL OR (v_job.locked_at IS NULL AND v_job.attempts = 0)) THEN
      IF v_job.job_id IS NOT NULL THEN
        PERFORM graphile_worker.remove_job('merge:' || v_run.node_a);
      END IF;
      PERFORM steep_repl.finish_merge(v_run.merge_id, 'cancelled',
                                      jsonb_build_object('exchanged', false, 'reason', 'cancelled before the job started'));
      RETURN jsonb_build_object('merge_id', v_run.merge_id, 'node_id', p_node, 'cancelled', true, 'state', 'cancelled');
    END IF;

    UPDATE steep_repl.merge_runs SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now()
     WHERE merge_id = v_run.merge_id;
    UPDATE steep_repl.init_progress
       SET cancel_requested_at = coalesce(cancel_requested_at, now()), phase = 'cancelling', updated_at = now()
     WHERE node_id = v_run.node_a AND (merge ->> 'merge_id')::bigint = v_run.merge_id AND merge ->> 'coordinator' = v_run.node_a
       AND merge ->> 'outcome' IS NULL;
    IF v_job.job_id IS NOT NULL AND (v_job.locked_at IS NOT NULL OR v_job.attempts < v_job.max_attempts) THEN
      -- running, or waiting to run again: it sees the request either way
      v_job_id := v_job.job_id;
      PERFORM steep_repl.request_job_cancel(v_run.node_a, v_job_id);
    ELSE
      v_job_id := steep_repl.enqueue('merge_nodes', jsonb_build_object('merge_id', v_run.merge_id, 'node_id', v_run.node_a),
                                     'merge:' || v_run.node_a, 25);
      UPDATE steep_repl.merge_runs SET job_id = v_job_id WHERE merge_id = v_run.merge_id;
    END IF;
    PERFORM steep_repl.emit_event('merge.cancel_requested', v_run.node_a,
                                  jsonb_build_object('merge_id', v_run.merge_id, 'job_id', v_job_id, 'node_b', v_run.node_b));
    RETURN jsonb_build_object('merge_id', v_run.merge_id, 'node_id', p_node, 'cancelled', false, 'cancel_requested', true,
                              'job_id', v_job_id, 'state', v_run.state);
  END IF;

  -- node B: the run is in A's database; the job polls this row
  SELECT * INTO v_progress FROM steep_repl.init_progress WHERE node_id = p_node FOR UPDATE;
  IF v_progress.merge ->> 'role' = 'b' AND v_progress.merge ->> 'outcome' IS NULL THEN
    UPDATE steep_repl.init_progress
       SET cancel_requested_at = coalesce(cancel_requested_at, now()), phase = 'cancelling', updated_at = now()
     WHERE node_id = p_node;
    PERFORM steep_repl.emit_event('merge.cancel_requested', p_node, jsonb_build_object(
      'merge_id', (v_progress.merge ->> 'merge_id')::bigint, 'coordinator', v_progress.merge ->> 'coordinator'));
    RETURN jsonb_build_object('merge_id', (v_progress.merge ->> 'merge_id')::bigint, 'node_id', p_node, 'cancelled', false,
                              'cancel_requested', true, 'coordinator', v_progress.merge ->> 'coordinator',
                              'state', (SELECT init_state FROM steep_repl.nodes WHERE node_id = p_node));
  END IF;

  SELECT * INTO v_last FROM steep_repl.merge_runs WHERE node_a = p_node OR node_b = p_node ORDER BY merge_id DESC LIMIT 1;
  RAISE EXCEPTION 'node % has no merge queued or running in this database', quote_ident(p_node)
    USING ERRCODE = 'SR003',
          HINT = CASE
            WHEN v_progress.merge IS NOT NULL AND (SELECT init_state FROM steep_repl.nodes WHERE node_id = p_node) = 'failed'
              THEN format('its merge with %s failed: run it again (steep-repl node merge), or detach the node (steep-repl node detach %s)',
                          quote_ident(v_progress.merge ->> 'peer_node_id'), steep_repl.shell_word(p_node))
            WHEN v_last.merge_id IS NOT NULL THEN format('its last merge, %s, is %s', v_last.merge_id, v_last.state)
            ELSE 'it has never been merged' END;
END $$;
