-- Enqueue a job for this node's agent. A job key makes a second request for
-- the same work replace the queued one instead of running twice. Tasks record
-- their own failures in the tables; attempts > 1 let a job that was running
-- when its agent died run again after the agent restarts.
CREATE OR REPLACE FUNCTION steep_repl.enqueue(p_task text, p_payload jsonb, p_job_key text DEFAULT NULL, p_max_attempts integer DEFAULT 5)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_job_id bigint;
BEGIN
  IF to_regnamespace('graphile_worker') IS NULL THEN
    RAISE EXCEPTION 'the job queue is not installed in this database'
      USING ERRCODE = 'SR004', HINT = 'run steep-repl install --db <this database>';
  END IF;
  SELECT id INTO v_job_id FROM graphile_worker.add_job(p_task, p_payload::json, job_key => p_job_key, max_attempts => p_max_attempts);
  RETURN v_job_id;
END $$;
