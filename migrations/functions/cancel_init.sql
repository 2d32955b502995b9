-- Cancel returns at once. A job that never started is removed here; a
-- running one is told over steep_repl_cancel; anything else (a failed init,
-- a job waiting for its agent to come back) gets a job that cleans up,
-- because only the agent can reach the source to drop what it created there.
-- A reinit has its own rules (cancel_reinit), and so has a merge (cancel_merge).
CREATE OR REPLACE FUNCTION steep_repl.cancel_init(p_node_id text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes := steep_repl.get_node(p_node_id);
  v_job record;
  v_job_id bigint;
BEGIN
  -- a merge's progress row, or a run of it in this database (node A's): cancel_merge's
  IF (SELECT method FROM steep_repl.init_progress WHERE node_id = p_node_id) = 'merge'
     OR EXISTS (SELECT 1 FROM steep_repl.merge_runs WHERE (node_a = p_node_id OR node_b = p_node_id) AND state IN ('queued', 'running')) THEN
    RETURN steep_repl.cancel_merge(p_node_id);
  END IF;
  SELECT * INTO v_node FROM steep_repl.nodes WHERE node_id = p_node_id FOR UPDATE;
  IF NOT (v_node.init_state IN ('failed') OR (SELECT in_progress FROM steep_repl.init_states WHERE state = v_node.init_state))
     OR NOT EXISTS (SELECT 1 FROM steep_repl.init_progress WHERE node_id = p_node_id) THEN
    RAISE EXCEPTION 'node % is %: there is no initialization to cancel', quote_ident(p_node_id), v_node.init_state
      USING ERRCODE = 'SR003';
  END IF;
  IF v_node.init_state = 'reinitializing' AND (SELECT reinit FROM steep_repl.init_progress WHERE node_id = p_node_id) IS NOT NULL THEN
    RETURN steep_repl.cancel_reinit(p_node_id);
  END IF;
  SELECT * INTO v_job FROM steep_repl.init_job(p_node_id);

  IF v_job.job_id IS NOT NULL AND v_job.locked_at IS NULL AND v_job.attempts = 0 AND v_node.init_state = 'preparing' THEN
    PERFORM graphile_worker.remove_job('init:' || p_node_id);
    PERFORM steep_repl.finish_init(p_node_id, 'cancelled', jsonb_build_object('reason', 'cancelled before the job started'));
    RETURN jsonb_build_object('node_id', p_node_id, 'cancelled', true, 'state', 'uninitialized');
  END IF;

  UPDATE steep_repl.init_progress SET cancel_requested_at = coalesce(cancel_requested_at, now()), phase = 'cancelling',
         updated_at = now()
   WHERE node_id = p_node_id;
  IF v_job.job_id IS NOT NULL AND v_job.locked_at IS NOT NULL THEN
    v_job_id := v_job.job_id;
    PERFORM steep_repl.request_job_cancel(p_node_id, v_job_id);
  ELSE
    v_job_id := steep_repl.enqueue((SELECT m.task FROM steep_repl.init_progress p JOIN steep_repl.init_methods m USING (method)
                                     WHERE p.node_id = p_node_id),
      jsonb_build_object('node_id', p_node_id, 'source_node_id', v_node.init_source_node), 'init:' || p_node_id, 25);
  END IF;
  PERFORM steep_repl.emit_event('init.cancel_requested', p_node_id, jsonb_build_object('job_id', v_job_id));
  RETURN jsonb_build_object('node_id', p_node_id, 'cancelled', false, 'cancel_requested', true,
                            'job_id', v_job_id, 'state', v_node.init_state);
END $$;
