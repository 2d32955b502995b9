-- The verify job of a node, queued or running, if any (job key
-- 'verify:' || node). PL/pgSQL so that the extension script can create it
-- before graphile-worker's schema exists.
CREATE OR REPLACE FUNCTION steep_repl.verify_job(p_node_id text)
RETURNS TABLE (job_id bigint, locked_at timestamptz, attempts smallint, max_attempts smallint, run_at timestamptz, last_error text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF to_regclass('graphile_worker._private_jobs') IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY SELECT j.id, j.locked_at, j.attempts, j.max_attempts, j.run_at, j.last_error
               FROM graphile_worker._private_jobs j WHERE j.key = 'verify:' || p_node_id;
END $$;
