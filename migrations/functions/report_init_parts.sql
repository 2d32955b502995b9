-- What the copy workers measured, turned into progress: p_parts [{leaf_schema,
-- leaf_name, part_no, rows_copied, bytes_copied}] for the parts being
-- copied; every planned table's report is derived from its parts (copied
-- once all are done or resynced) and passed to report_init_progress with p_stats.
CREATE OR REPLACE FUNCTION steep_repl.report_init_parts(p_node_id text, p_parts jsonb, p_stats jsonb DEFAULT '{}')
RETURNS steep_repl.init_progress LANGUAGE plpgsql AS $$
BEGIN
  UPDATE steep_repl.init_parts p
     SET rows_copied = greatest(p.rows_copied, r.rows_copied), bytes_copied = greatest(p.bytes_copied, r.bytes_copied)
    FROM jsonb_to_recordset(coalesce(p_parts, '[]')) AS r(leaf_schema text, leaf_name text, part_no integer, rows_copied bigint, bytes_copied bigint)
   WHERE p.node_id = p_node_id AND p.leaf_schema = r.leaf_schema AND p.leaf_name = r.leaf_name AND p.part_no = r.part_no
     AND p.state = 'copying';
  RETURN steep_repl.report_init_progress(p_node_id, (
    SELECT coalesce(jsonb_agg(jsonb_build_object(
             'schema_name', t.schema_name, 'table_name', t.table_name,
             'state', CASE WHEN t.all_copied THEN 'copied' WHEN t.started THEN 'copying' ELSE 'pending' END,
             'rows_copied', t.rows_copied)), '[]')
    FROM (SELECT p.schema_name, p.table_name,
                 bool_and(p.state IN ('done', 'resynced')) AS all_copied,
                 bool_or(p.state <> 'pending') AS started,
                 sum(p.rows_copied) FILTER (WHERE p.state IN ('copying', 'done')) AS rows_copied
          FROM steep_repl.init_parts p WHERE p.node_id = p_node_id
          GROUP BY 1, 2) t), p_stats);
END $$;
