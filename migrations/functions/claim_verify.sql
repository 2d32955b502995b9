-- The verify job's first step: the run becomes running, from the start
-- (a job that runs again after its agent died compares every table again,
-- so what the first attempt recorded goes). NULL when there is nothing to
-- run: the run ended already (cancelled before its job started) or is gone.
CREATE OR REPLACE FUNCTION steep_repl.claim_verify(p_verify_id bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_run steep_repl.verify_runs;
BEGIN
  SELECT * INTO v_run FROM steep_repl.verify_runs WHERE verify_id = p_verify_id FOR UPDATE;
  IF NOT FOUND OR v_run.state NOT IN ('queued', 'running') THEN
    RETURN NULL;
  END IF;
  DELETE FROM steep_repl.verify_differences WHERE verify_id = p_verify_id;
  UPDATE steep_repl.verify_tables
     SET status = 'pending', compared = NULL, note = NULL, rows_estimate = NULL, ranges_total = 0, ranges_done = 0,
         ranges_differing = 0, rows_compared = 0, rows_missing = 0, rows_extra = 0, rows_different = 0, rows_unsettled = 0,
         sample_keys = '[]', started_at = NULL, finished_at = NULL
   WHERE verify_id = p_verify_id;
  UPDATE steep_repl.verify_runs
     SET state = 'running', phase = 'planning', percent = 0, tables_done = 0, rows_compared = 0, peer_lsn = NULL,
         error = NULL, hint = NULL, started_at = now(), updated_at = now()
   WHERE verify_id = p_verify_id
  RETURNING * INTO v_run;
  RETURN to_jsonb(v_run) || jsonb_build_object(
    'subscription', steep_repl.replication_name(v_run.peer_node_id, v_run.node_id),
    'key_limit', coalesce((v_run.options ->> 'key_limit')::int, 1000),
    'tables', coalesce((SELECT jsonb_agg(jsonb_build_object('schema_name', t.schema_name, 'table_name', t.table_name,
                                                            'label', format('%I.%I', t.schema_name, t.table_name))
                                         ORDER BY t.schema_name, t.table_name)
                        FROM steep_repl.verify_tables t WHERE t.verify_id = p_verify_id), '[]'));
END $$;
