-- cancel_init for a node that is reinitializing (init_progress.reinit).
-- A job that never started is removed and the node is back in its previous
-- state at once. While the last phase's verify runs, that verify is
-- cancelled: the tables are re-copied, the node ends synchronized (or
-- diverged by other tables). Otherwise the job is told (or, with none
-- running, queued to act on it): before the tables left the publication it
-- ends the reinit unchanged; after, it lets the re-copy finish and skips
-- the verify (tables and schema); a full reinit ends as an init's cancel,
-- uninitialized.
CREATE OR REPLACE FUNCTION steep_repl.cancel_reinit(p_node text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes;
  v_progress steep_repl.init_progress;
  v_reinit jsonb;
  v_job record;
  v_job_id bigint;
  v_verify_id bigint;
BEGIN
  SELECT * INTO v_node FROM steep_repl.nodes WHERE node_id = p_node FOR UPDATE;
  SELECT * INTO v_progress FROM steep_repl.init_progress WHERE node_id = p_node FOR UPDATE;
  v_reinit := v_progress.reinit;
  IF v_reinit IS NULL OR v_node.init_state <> 'reinitializing' THEN
    RAISE EXCEPTION 'node % has no reinit in progress (it is %)', quote_ident(p_node), v_node.init_state USING ERRCODE = 'SR003';
  END IF;
  SELECT * INTO v_job FROM steep_repl.init_job(p_node);

  IF v_job.job_id IS NOT NULL AND v_job.locked_at IS NULL AND v_job.attempts = 0 AND v_reinit ->> 'step' = 'queued' THEN
    PERFORM graphile_worker.remove_job('init:' || p_node);
    UPDATE steep_repl.init_progress SET cancel_requested_at = now() WHERE node_id = p_node;
    v_node := steep_repl.finish_reinit(p_node, 'unchanged', jsonb_build_object('reason', 'cancelled', 'note', 'cancelled before the job started'));
    RETURN jsonb_build_object('node_id', p_node, 'cancelled', true, 'changed', false, 'state', v_node.init_state);
  END IF;

  UPDATE steep_repl.init_progress
     SET cancel_requested_at = coalesce(cancel_requested_at, now()),
         phase = CASE WHEN v_reinit ->> 'scope' = 'full' AND phase <> 'verifying' THEN 'cancelling' ELSE phase END, updated_at = now()
   WHERE node_id = p_node;

  SELECT r.verify_id INTO v_verify_id FROM steep_repl.verify_runs r
   WHERE r.node_id = p_node AND r.reason = 'reinit' AND r.state IN ('queued', 'running')
   ORDER BY r.verify_id DESC LIMIT 1;
  IF v_verify_id IS NOT NULL THEN
    PERFORM steep_repl.cancel_verify(p_node);
  END IF;
  IF v_verify_id IS NOT NULL AND v_job.job_id IS NULL THEN
    NULL;
  ELSIF v_job.job_id IS NOT NULL AND v_job.locked_at IS NOT NULL THEN
    v_job_id := v_job.job_id;
    PERFORM steep_repl.request_job_cancel(p_node, v_job_id);
  ELSE
    v_job_id := steep_repl.enqueue(CASE WHEN v_reinit ->> 'scope' = 'full'
                                        THEN (SELECT m.task FROM steep_repl.init_methods m WHERE m.method = v_progress.method)
                                        ELSE 'reinit_node' END,
                                   jsonb_build_object('node_id', p_node, 'source_node_id', v_node.init_source_node), 'init:' || p_node, 25);
  END IF;
  PERFORM steep_repl.emit_event('init.cancel_requested', p_node, jsonb_build_object(
    'job_id', v_job_id, 'verify_id', v_verify_id, 'reinit', true, 'changed', (v_reinit ->> 'changed')::boolean));
  RETURN jsonb_build_object('node_id', p_node, 'cancelled', false, 'cancel_requested', true, 'job_id', v_job_id, 'verify_id', v_verify_id,
                            'changed', (v_reinit ->> 'changed')::boolean,
                            'state', (SELECT n.init_state FROM steep_repl.nodes n WHERE n.node_id = p_node));
END $$;
