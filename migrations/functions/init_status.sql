-- The init's whole picture in one value: node state, progress row with the
-- method's phases, what the method recorded, tables and the job. Clients
-- poll it after a reconnect; notifications carry the changes in between.
-- Every figure a client shows is computed here once: a table's rate while it
-- copies, elapsed times, and table names quoted as PostgreSQL quotes them.
CREATE OR REPLACE FUNCTION steep_repl.init_status(p_node_id text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_node steep_repl.nodes := steep_repl.get_node(p_node_id);
BEGIN
  RETURN jsonb_build_object(
    'node_id', v_node.node_id,
    'state', v_node.init_state,
    'in_progress', (SELECT in_progress FROM steep_repl.init_states WHERE state = v_node.init_state),
    'source_node_id', v_node.init_source_node,
    'started_at', v_node.init_started_at,
    'completed_at', v_node.init_completed_at,
    'progress', (SELECT to_jsonb(p) || jsonb_build_object(
                          'phases', to_jsonb(steep_repl.reinit_phases(p.reinit, m.phases)),
                          'elapsed_seconds', extract(epoch FROM coalesce(CASE WHEN p.phase IN ('done', 'failed') THEN p.updated_at END,
                                                                          clock_timestamp()) - p.started_at)::float8)
                   FROM steep_repl.init_progress p JOIN steep_repl.init_methods m USING (method)
                  WHERE p.node_id = p_node_id),
    'method_state', (SELECT to_jsonb(s) - 'node_id' FROM steep_repl.init_method_state s WHERE s.node_id = p_node_id),
    'tables', coalesce((SELECT jsonb_agg(to_jsonb(t) - 'node_id' || jsonb_build_object(
                                 'label', format('%I.%I', t.schema_name, t.table_name),
                                 -- its average rate: since it started while it copies, over its copy once done
                                 'rows_per_second', coalesce(t.rows_per_second,
                                   round(t.rows_copied / nullif(extract(epoch FROM coalesce(t.completed_at, clock_timestamp())
                                                                                 - t.started_at), 0)::numeric, 1)),
                                 'seconds', extract(epoch FROM coalesce(t.completed_at, clock_timestamp()) - t.started_at)::float8)
                               ORDER BY t.schema_name, t.table_name)
                        FROM steep_repl.init_table_progress t WHERE t.node_id = p_node_id), '[]'),
    -- a method that copies in parts (direct): how many are done, and the
    -- ones being copied now, one per copy worker
    'parts', (SELECT jsonb_build_object(
                       'total', count(*),
                       'done', count(*) FILTER (WHERE p.state IN ('done', 'resynced')),
                       'resync', count(*) FILTER (WHERE p.state = 'resync'),
                       'copied_twice', count(*) FILTER (WHERE p.copies > 1),
                       'active', coalesce(jsonb_agg(jsonb_build_object(
                           'worker', p.worker,
                           'label', format('%I.%I', p.schema_name, p.table_name),
                           'leaf', format('%I.%I', p.leaf_schema, p.leaf_name),
                           'part_no', p.part_no, 'part_count', p.part_count, 'split', p.split,
                           'rows_copied', p.rows_copied, 'bytes_copied', p.bytes_copied, 'rows_estimate', p.rows_estimate,
                           'percent', CASE WHEN p.rows_estimate > 0 THEN least(99.9, round(100.0 * p.rows_copied / p.rows_estimate, 1)) END,
                           'rows_per_second', round(p.rows_copied / nullif(extract(epoch FROM clock_timestamp() - p.started_at), 0)::numeric, 1))
                         ORDER BY p.worker) FILTER (WHERE p.state = 'copying'), '[]'))
                FROM steep_repl.init_parts p WHERE p.node_id = p_node_id
              HAVING count(*) > 0),
    'job', (SELECT to_jsonb(j) FROM steep_repl.init_job(p_node_id) j));
END $$;
