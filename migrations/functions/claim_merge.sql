-- The merge job's first step: the run becomes running. A run found running
-- already is resumed (its agent died, or the job runs again after an error
-- past the exchange): what it recorded stays, the job decides from the
-- steps where to go on. NULL when there is nothing to run: the run ended
-- (cancelled before its job started) or is gone.
CREATE OR REPLACE FUNCTION steep_repl.claim_merge(p_merge_id bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_run steep_repl.merge_runs;
  v_resumed boolean;
BEGIN
  SELECT * INTO v_run FROM steep_repl.merge_runs WHERE merge_id = p_merge_id FOR UPDATE;
  IF NOT FOUND OR v_run.state NOT IN ('queued', 'running') THEN
    RETURN NULL;
  END IF;
  v_resumed := v_run.state = 'running';
  UPDATE steep_repl.merge_runs
     SET state = 'running', phase = coalesce(phase, 'preparing'), started_at = coalesce(started_at, now()), updated_at = now()
   WHERE merge_id = p_merge_id
  RETURNING * INTO v_run;
  RETURN to_jsonb(v_run) || jsonb_build_object(
    'resumed', v_resumed,
    'tables', coalesce((SELECT jsonb_agg(jsonb_build_object('schema_name', t.schema_name, 'table_name', t.table_name,
                                                            'label', format('%I.%I', t.schema_name, t.table_name), 'status', t.status)
                                         ORDER BY t.schema_name, t.table_name)
                        FROM steep_repl.merge_tables t WHERE t.merge_id = p_merge_id), '[]'));
END $$;
