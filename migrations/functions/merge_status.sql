-- One merge run's whole picture, on node A's database: the run, both
-- nodes' states as this registry has them, its job, per table what was
-- found and written (label as PostgreSQL quotes the name), and how many
-- conflicts it recorded, resolved or not.
CREATE OR REPLACE FUNCTION steep_repl.merge_status(p_merge_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_run steep_repl.merge_runs;
BEGIN
  v_run := steep_repl.get_merge(p_merge_id);
  RETURN to_jsonb(v_run) || jsonb_build_object(
    'node_a_state', (SELECT init_state FROM steep_repl.nodes WHERE node_id = v_run.node_a),
    'node_b_state', (SELECT init_state FROM steep_repl.nodes WHERE node_id = v_run.node_b),
    'seconds', extract(epoch FROM coalesce(v_run.finished_at, clock_timestamp()) - coalesce(v_run.started_at, v_run.requested_at))::float8,
    'job', (SELECT to_jsonb(j) - 'merge_id' FROM steep_repl.merge_job(v_run.node_a) j WHERE j.job_id = v_run.job_id),
    'tables', coalesce((SELECT jsonb_agg(to_jsonb(t) - 'merge_id' || jsonb_build_object('label', format('%I.%I', t.schema_name, t.table_name))
                                         ORDER BY t.schema_name, t.table_name)
                        FROM steep_repl.merge_tables t WHERE t.merge_id = p_merge_id), '[]'),
    'conflicts', (SELECT jsonb_build_object(
                           'total', count(*),
                           'unresolved', count(*) FILTER (WHERE c.resolution IS NULL),
                           'by_kind', coalesce((SELECT jsonb_object_agg(k.kind, k.n)
                                                FROM (SELECT kind, count(*) AS n FROM steep_repl.merge_conflicts
                                                      WHERE merge_id = p_merge_id GROUP BY kind) k), '{}'))
                  FROM steep_repl.merge_conflicts c WHERE c.merge_id = p_merge_id));
END $$;
