-- The agent reports what it measured; this function turns it into progress.
-- p_tables: [{schema_name, table_name, state, rows_total, bytes_total,
-- rows_copied}] with state pending|copying|copied|done. p_stats: rates, ETA,
-- workers, lag. Percentages never go backwards; overall % is weighted by the
-- bytes each table holds on the source.
CREATE OR REPLACE FUNCTION steep_repl.report_init_progress(p_node_id text, p_tables jsonb, p_stats jsonb DEFAULT '{}')
RETURNS steep_repl.init_progress LANGUAGE plpgsql AS $$
DECLARE
  v_progress steep_repl.init_progress;
BEGIN
  INSERT INTO steep_repl.init_table_progress AS p
    (node_id, schema_name, table_name, state, rows_total, bytes_total, rows_copied, started_at, completed_at)
  SELECT p_node_id, r.schema_name, r.table_name, r.state, r.rows_total, r.bytes_total, greatest(coalesce(r.rows_copied, 0), 0),
         CASE WHEN r.state <> 'pending' THEN clock_timestamp() END,
         CASE WHEN r.state = 'done' THEN clock_timestamp() END
  FROM jsonb_to_recordset(coalesce(p_tables, '[]'))
       AS r(schema_name text, table_name text, state text, rows_total bigint, bytes_total bigint, rows_copied bigint)
  ON CONFLICT (node_id, schema_name, table_name) DO UPDATE SET
    state = CASE WHEN p.state = 'done' THEN 'done' ELSE excluded.state END,
    rows_total = coalesce(excluded.rows_total, p.rows_total),
    bytes_total = coalesce(excluded.bytes_total, p.bytes_total),
    rows_copied = greatest(p.rows_copied, excluded.rows_copied),
    started_at = coalesce(p.started_at, excluded.started_at),
    completed_at = coalesce(p.completed_at, excluded.completed_at);

  -- Percent per table: done tables 100, copying tables by rows against the
  -- source's count (held below 100 until the table is ready); never lower.
  UPDATE steep_repl.init_table_progress t SET
    percent = greatest(t.percent, CASE
      WHEN t.state IN ('done', 'copied') THEN 100
      WHEN t.state = 'copying' AND coalesce(t.rows_total, 0) > 0 THEN least(99.99, round(100.0 * t.rows_copied / t.rows_total, 2))
      ELSE 0 END),
    rows_copied = CASE WHEN t.state IN ('done', 'copied') THEN greatest(t.rows_copied, coalesce(t.rows_total, 0)) ELSE t.rows_copied END
  WHERE t.node_id = p_node_id;
  UPDATE steep_repl.init_table_progress t SET
    bytes_copied = greatest(t.bytes_copied, round(coalesce(t.bytes_total, 0) * t.percent / 100)::bigint),
    rows_per_second = CASE WHEN t.state IN ('done', 'copied') AND t.completed_at > t.started_at
                           THEN round(t.rows_copied / extract(epoch FROM t.completed_at - t.started_at)::numeric, 1)
                           ELSE t.rows_per_second END
  WHERE t.node_id = p_node_id;

  UPDATE steep_repl.init_progress p SET
    tables_total = s.tables_total,
    tables_done = s.tables_done,
    rows_total = s.rows_total,
    rows_copied = s.rows_copied,
    bytes_total = s.bytes_total,
    bytes_copied = s.bytes_copied,
    overall_percent = greatest(p.overall_percent, CASE
      WHEN s.tables_total = 0 THEN 0
      WHEN s.bytes_total > 0 THEN least(100, round(100.0 * s.weighted / s.bytes_total, 2))
      ELSE round(100.0 * s.tables_done / s.tables_total, 2) END),
    current_table = s.current_table,
    current_table_percent = s.current_percent,
    rows_per_second = coalesce((p_stats ->> 'rows_per_second')::numeric, p.rows_per_second),
    bytes_per_second = coalesce((p_stats ->> 'bytes_per_second')::numeric, p.bytes_per_second),
    eta_seconds = CASE WHEN p_stats ? 'eta_seconds' THEN (p_stats ->> 'eta_seconds')::int ELSE p.eta_seconds END,
    workers_active = coalesce((p_stats ->> 'workers_active')::int, p.workers_active),
    workers_max = coalesce((p_stats ->> 'workers_max')::int, p.workers_max),
    lag_bytes = CASE WHEN p_stats ? 'lag_bytes' THEN (p_stats ->> 'lag_bytes')::bigint ELSE p.lag_bytes END,
    updated_at = clock_timestamp()
  FROM (
    SELECT count(*)::int AS tables_total,
           count(*) FILTER (WHERE t.state = 'done')::int AS tables_done,
           sum(coalesce(t.rows_total, 0))::bigint AS rows_total,
           sum(t.rows_copied)::bigint AS rows_copied,
           sum(coalesce(t.bytes_total, 0))::bigint AS bytes_total,
           sum(t.bytes_copied)::bigint AS bytes_copied,
           sum(coalesce(t.bytes_total, 0) * t.percent / 100) AS weighted,
           (SELECT format('%I.%I', c.schema_name, c.table_name) FROM steep_repl.init_table_progress c
             WHERE c.node_id = p_node_id AND c.state = 'copying' ORDER BY c.bytes_total DESC NULLS LAST LIMIT 1) AS current_table,
           (SELECT c.percent FROM steep_repl.init_table_progress c
             WHERE c.node_id = p_node_id AND c.state = 'copying' ORDER BY c.bytes_total DESC NULLS LAST LIMIT 1) AS current_percent
    FROM steep_repl.init_table_progress t WHERE t.node_id = p_node_id
  ) s
  WHERE p.node_id = p_node_id
  RETURNING p.* INTO v_progress;
  RETURN v_progress;
END $$;
