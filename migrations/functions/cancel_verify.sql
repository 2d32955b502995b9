-- Stops the node's verify: one whose job never started ends here; a
-- running one is told over steep_repl_cancel and ends cancelled (the
-- agent's finish_verify); the node's state does not change either way.
CREATE OR REPLACE FUNCTION steep_repl.cancel_verify(p_node text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_run steep_repl.verify_runs;
  v_job record;
BEGIN
  PERFORM steep_repl.get_node(p_node);
  -- the same lock as start_verify and finish_verify
  PERFORM 1 FROM steep_repl.nodes WHERE node_id = p_node FOR UPDATE;
  SELECT * INTO v_run FROM steep_repl.verify_runs
   WHERE node_id = p_node AND state IN ('queued', 'running') ORDER BY verify_id DESC LIMIT 1;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'node % has no verify queued or running', quote_ident(p_node)
      USING ERRCODE = 'SR003',
            HINT = coalesce(format('its last verify, %s, is %s', (SELECT verify_id FROM steep_repl.verify_runs WHERE node_id = p_node ORDER BY verify_id DESC LIMIT 1),
                                   (SELECT state FROM steep_repl.verify_runs WHERE node_id = p_node ORDER BY verify_id DESC LIMIT 1)),
                            'it has never been verified');
  END IF;
  SELECT * INTO v_job FROM steep_repl.verify_job(p_node) j WHERE j.job_id = v_run.job_id;

  IF v_job.job_id IS NULL OR v_job.locked_at IS NULL THEN
    -- not running: no agent will record the end, so it is recorded here
    IF v_job.job_id IS NOT NULL THEN
      PERFORM graphile_worker.remove_job('verify:' || p_node);
    END IF;
    PERFORM steep_repl.finish_verify(v_run.verify_id, 'cancelled',
      jsonb_build_object('reason', CASE WHEN v_run.state = 'queued' THEN 'cancelled before the job started' ELSE 'cancelled while its job waited to run again' END));
    RETURN jsonb_build_object('verify_id', v_run.verify_id, 'node_id', p_node, 'cancelled', true, 'state', 'cancelled');
  END IF;

  UPDATE steep_repl.verify_runs SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now()
   WHERE verify_id = v_run.verify_id;
  PERFORM steep_repl.request_job_cancel(p_node, v_job.job_id);
  PERFORM steep_repl.emit_event('verify.cancel_requested', p_node, jsonb_build_object('verify_id', v_run.verify_id, 'job_id', v_job.job_id));
  RETURN jsonb_build_object('verify_id', v_run.verify_id, 'node_id', p_node, 'cancelled', false, 'cancel_requested', true,
                            'job_id', v_job.job_id, 'state', v_run.state);
END $$;
