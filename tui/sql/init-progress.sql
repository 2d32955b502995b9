-- The initialization of one node ($1 = node id), for the detail overlay.
SELECT p.node_id, p.source_node_id, p.method, p.phase, p.overall_percent,
       p.tables_total, p.tables_done, p.current_table, p.current_table_percent,
       p.rows_total, p.rows_copied, p.bytes_total, p.bytes_copied,
       p.rows_per_second, p.bytes_per_second, p.eta_seconds,
       p.workers_active, p.workers_max, p.lag_bytes, p.error,
       p.started_at, p.updated_at,
       extract(epoch FROM coalesce(CASE WHEN p.phase IN ('done', 'failed') THEN p.updated_at END, now())
                          - p.started_at)::float8 AS elapsed_seconds
FROM steep_repl.init_progress p
WHERE p.node_id = $1
