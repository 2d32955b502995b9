-- The merge job a node's agent runs as node A, queued or running, if any
-- (job key 'merge:' || node), with the run it works on. PL/pgSQL so that
-- the extension script can create it before graphile-worker's schema exists.
CREATE OR REPLACE FUNCTION steep_repl.merge_job(p_node text)
RETURNS TABLE (job_id bigint, locked_at timestamptz, attempts smallint, max_attempts smallint, run_at timestamptz, last_error text,
               merge_id bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF to_regclass('graphile_worker._private_jobs') IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY SELECT j.id, j.locked_at, j.attempts, j.max_attempts, j.run_at, j.last_error, (j.payload ->> 'merge_id')::bigint
               FROM graphile_worker._private_jobs j WHERE j.key = 'merge:' || p_node;
END $$;
