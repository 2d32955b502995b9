-- What a snapshot's parts add up to, computed once for snapshot_status, the
-- progress payload and snapshot_overview. rows/bytes_written: done parts'
-- COPY streams plus what the parts being written have streamed so far;
-- bytes_stored: the done files' size. overall_percent weighs each part by
-- its estimated bytes (a part being written by its rows against its
-- estimate, held below 99%), below 100 until the snapshot is ready.
CREATE OR REPLACE FUNCTION steep_repl.snapshot_totals(p_snapshot_id text)
RETURNS TABLE (tables_total integer, tables_done integer, parts_total integer, parts_done integer,
               rows_estimate bigint, bytes_estimate bigint, rows_written bigint, bytes_written bigint,
               bytes_stored bigint, overall_percent numeric)
LANGUAGE sql STABLE AS $$
  WITH parts AS (
    SELECT p.*,
           CASE WHEN p.state = 'done' THEN 1.0
                WHEN p.state = 'writing' AND p.rows_estimate > 0 THEN least(0.99, p.rows_written::numeric / p.rows_estimate)
                ELSE 0 END AS fraction
    FROM steep_repl.snapshot_parts p WHERE p.snapshot_id = p_snapshot_id
  ), tables AS (
    SELECT p.schema_name, p.table_name, bool_and(p.state = 'done') AS done FROM parts p GROUP BY 1, 2
  )
  SELECT greatest((SELECT count(*) FROM tables), (SELECT jsonb_array_length(s.tables) FROM steep_repl.snapshots s
                                                   WHERE s.snapshot_id = p_snapshot_id))::integer,
         (SELECT count(*) FILTER (WHERE t.done) FROM tables t)::integer,
         count(*)::integer,
         count(*) FILTER (WHERE p.state = 'done')::integer,
         coalesce(sum(p.rows_estimate), 0)::bigint,
         coalesce(sum(p.bytes_estimate), 0)::bigint,
         coalesce(sum(CASE WHEN p.state = 'done' THEN p.rows ELSE p.rows_written END), 0)::bigint,
         coalesce(sum(CASE WHEN p.state = 'done' THEN p.raw_bytes ELSE p.bytes_written END), 0)::bigint,
         coalesce(sum(p.stored_bytes) FILTER (WHERE p.state = 'done'), 0)::bigint,
         CASE WHEN (SELECT s.state FROM steep_repl.snapshots s WHERE s.snapshot_id = p_snapshot_id) = 'ready' THEN 100::numeric
              WHEN count(*) = 0 THEN 0::numeric
              WHEN sum(p.bytes_estimate) > 0 THEN least(99.9, round(100 * sum(p.bytes_estimate * p.fraction) / sum(p.bytes_estimate), 2))
              ELSE least(99.9, round(100 * sum(p.fraction) / count(*), 2)) END
  FROM parts p
$$;
