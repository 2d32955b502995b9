-- Per-table progress of one node's initialization ($1 = node id): tables
-- being copied first, then finished ones by completion, then pending ones.
SELECT t.schema_name, t.table_name, format('%I.%I', t.schema_name, t.table_name) AS display_name, t.state, t.rows_total, t.rows_copied,
       t.bytes_total, t.bytes_copied, t.percent,
       -- while a table copies, its average rate since it started
       coalesce(t.rows_per_second,
                t.rows_copied / nullif(extract(epoch FROM now() - t.started_at), 0)) AS rows_per_second,
       t.started_at, t.completed_at, t.error,
       extract(epoch FROM coalesce(t.completed_at, now()) - t.started_at)::float8 AS seconds
FROM steep_repl.init_table_progress t
WHERE t.node_id = $1
ORDER BY CASE t.state WHEN 'copying' THEN 0 WHEN 'failed' THEN 1 WHEN 'copied' THEN 2
                      WHEN 'done' THEN 2 WHEN 'skipped' THEN 3 ELSE 4 END,
         t.completed_at DESC NULLS LAST, t.schema_name, t.table_name
