-- Ask the agent to stop a running job. The agent aborts the job whose
-- payload names this node (or the job with this id) within milliseconds.
CREATE OR REPLACE FUNCTION steep_repl.request_job_cancel(p_node_id text, p_job_id bigint DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF p_node_id IS NULL AND p_job_id IS NULL THEN
    RAISE EXCEPTION 'name the node or the job to cancel' USING ERRCODE = 'SR004';
  END IF;
  IF p_node_id IS NOT NULL THEN
    PERFORM steep_repl.get_node(p_node_id);
  END IF;
  PERFORM pg_notify('steep_repl_cancel', jsonb_build_object('node_id', p_node_id, 'job_id', p_job_id)::text);
END $$;
