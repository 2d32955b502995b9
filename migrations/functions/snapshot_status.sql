-- A snapshot's whole picture in one value, the one shape clients read: the
-- row (its tables list aside), what its parts add up to (snapshot_totals),
-- the parts being written now (one per worker), its slot as the server has
-- it now, the applies streaming through its publication, and its job.
-- Names are quoted as PostgreSQL quotes them.
CREATE OR REPLACE FUNCTION steep_repl.snapshot_status(p_snapshot_id text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_row steep_repl.snapshots := steep_repl.get_snapshot(p_snapshot_id);
  v_job jsonb;
BEGIN
  IF to_regclass('graphile_worker._private_jobs') IS NOT NULL THEN
    EXECUTE 'SELECT to_jsonb(j) FROM (SELECT id AS job_id, locked_at, attempts, run_at, last_error
                                        FROM graphile_worker._private_jobs WHERE key = $1) j'
      INTO v_job USING 'snapshot_generate:' || p_snapshot_id;
  END IF;
  RETURN to_jsonb(v_row) - 'tables'
    || (SELECT to_jsonb(t) FROM steep_repl.snapshot_totals(p_snapshot_id) t)
    || jsonb_build_object(
      'tables', (SELECT coalesce(jsonb_agg(format('%I.%I', t ->> 'schema_name', t ->> 'table_name') ORDER BY o), '[]')
                   FROM jsonb_array_elements(v_row.tables) WITH ORDINALITY x(t, o)),
      'elapsed_seconds', extract(epoch FROM coalesce(v_row.finished_at, clock_timestamp()) - v_row.created_at)::float8,
      'active', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                     'worker', p.worker,
                     'table', format('%I.%I', p.schema_name, p.table_name),
                     'leaf', format('%I.%I', p.leaf_schema, p.leaf_name),
                     'part_no', p.part_no, 'part_count', p.part_count, 'split', p.split, 'file_name', p.file_name,
                     'rows_written', p.rows_written, 'rows_estimate', p.rows_estimate, 'bytes_written', p.bytes_written,
                     'percent', CASE WHEN p.rows_estimate > 0 THEN least(99.9, round(100.0 * p.rows_written / p.rows_estimate, 1)) END,
                     'rows_per_second', round(p.rows_written / nullif(extract(epoch FROM clock_timestamp() - p.started_at), 0)::numeric, 1),
                     'writes', p.writes)
                   ORDER BY p.worker), '[]')
                 FROM steep_repl.snapshot_parts p WHERE p.snapshot_id = p_snapshot_id AND p.state = 'writing'),
      'slot', (SELECT jsonb_build_object(
                   'exists', r.slot_name IS NOT NULL,
                   'active', coalesce(r.active, false),
                   'wal_status', r.wal_status,
                   'safe_wal_size', r.safe_wal_size,
                   'retained_bytes', CASE WHEN r.restart_lsn IS NOT NULL
                                          THEN greatest(0, pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), r.restart_lsn))::bigint END)
                 FROM (SELECT 1) one
                 LEFT JOIN pg_catalog.pg_replication_slots r ON r.slot_name = v_row.slot_name AND r.database = current_database()),
      'applies', (SELECT coalesce(jsonb_agg(jsonb_build_object('slot_name', i.slot_name, 'for_node', i.for_node,
                                                               'created_at', i.created_at, 'expires_at', i.expires_at)
                                            ORDER BY i.created_at), '[]')
                    FROM steep_repl.init_slots i WHERE i.purpose = 'two-phase' AND i.publication = v_row.publication),
      'job', v_job);
END $$;
