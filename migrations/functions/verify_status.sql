-- One verify's whole picture: the run, its job, and per table the counts,
-- the sample keys and up to 20 of the differences it kept (all of them,
-- up to the key limit, are in verify_differences). Names quoted as
-- PostgreSQL quotes them.
CREATE OR REPLACE FUNCTION steep_repl.verify_status(p_verify_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_run steep_repl.verify_runs;
BEGIN
  SELECT * INTO v_run FROM steep_repl.verify_runs WHERE verify_id = p_verify_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown verify %', coalesce(p_verify_id::text, 'NULL')
      USING ERRCODE = 'SR004',
            HINT = coalesce('the latest: ' || (SELECT string_agg(format('%s (node %s)', verify_id, quote_ident(node_id)), ', ' ORDER BY verify_id DESC)
                                              FROM (SELECT verify_id, node_id FROM steep_repl.verify_runs ORDER BY verify_id DESC LIMIT 5) l),
                            'no verify has run in this database');
  END IF;
  RETURN to_jsonb(v_run) || jsonb_build_object(
    'node_state', (SELECT init_state FROM steep_repl.nodes WHERE node_id = v_run.node_id),
    'seconds', extract(epoch FROM coalesce(v_run.finished_at, clock_timestamp()) - coalesce(v_run.started_at, v_run.requested_at))::float8,
    'job', (SELECT to_jsonb(j) FROM steep_repl.verify_job(v_run.node_id) j WHERE j.job_id = v_run.job_id),
    'tables_differing', (SELECT count(*) FROM steep_repl.verify_tables t WHERE t.verify_id = p_verify_id AND t.status = 'differs'),
    'tables_unsettled', (SELECT count(*) FROM steep_repl.verify_tables t WHERE t.verify_id = p_verify_id AND t.status = 'unsettled'),
    'tables', coalesce((SELECT jsonb_agg(to_jsonb(t) - 'verify_id' || jsonb_build_object(
                                 'label', format('%I.%I', t.schema_name, t.table_name),
                                 'seconds', extract(epoch FROM coalesce(t.finished_at, clock_timestamp()) - t.started_at)::float8,
                                 'differences', coalesce((SELECT jsonb_agg(jsonb_build_object('key', d.key, 'kind', d.kind) ORDER BY d.kind, d.key)
                                                          FROM (SELECT d.key, d.kind FROM steep_repl.verify_differences d
                                                                WHERE d.verify_id = t.verify_id AND d.schema_name = t.schema_name
                                                                  AND d.table_name = t.table_name
                                                                ORDER BY d.kind, d.key LIMIT 20) d), '[]'))
                               ORDER BY t.schema_name, t.table_name)
                        FROM steep_repl.verify_tables t WHERE t.verify_id = p_verify_id), '[]'));
END $$;
