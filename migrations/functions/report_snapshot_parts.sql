-- What the writers measured: p_parts [{leaf_schema, leaf_name, part_no,
-- rows_written, bytes_written}] for the parts being written (never lower
-- than reported before), p_stats {rows_per_second, bytes_per_second,
-- eta_seconds, workers_active}. Touches the row (its updated_at is what the
-- snapshot holder watches) and so announces it. Returns the row: a generate
-- whose snapshot is no longer generating (deleted, failed) stops.
CREATE OR REPLACE FUNCTION steep_repl.report_snapshot_parts(p_snapshot_id text, p_parts jsonb, p_stats jsonb DEFAULT '{}')
RETURNS steep_repl.snapshots LANGUAGE plpgsql AS $$
DECLARE
  v_row steep_repl.snapshots;
  v_stats jsonb := coalesce(p_stats, '{}');
BEGIN
  UPDATE steep_repl.snapshot_parts p
     SET rows_written = greatest(p.rows_written, coalesce(r.rows_written, 0)),
         bytes_written = greatest(p.bytes_written, coalesce(r.bytes_written, 0))
    FROM jsonb_to_recordset(coalesce(p_parts, '[]')) AS r(leaf_schema text, leaf_name text, part_no integer, rows_written bigint, bytes_written bigint)
   WHERE p.snapshot_id = p_snapshot_id AND p.leaf_schema = r.leaf_schema AND p.leaf_name = r.leaf_name AND p.part_no = r.part_no
     AND p.state = 'writing';
  UPDATE steep_repl.snapshots s SET
    rows_per_second = CASE WHEN v_stats ? 'rows_per_second' THEN (v_stats ->> 'rows_per_second')::numeric ELSE s.rows_per_second END,
    bytes_per_second = CASE WHEN v_stats ? 'bytes_per_second' THEN (v_stats ->> 'bytes_per_second')::numeric ELSE s.bytes_per_second END,
    eta_seconds = CASE WHEN v_stats ? 'eta_seconds' THEN (v_stats ->> 'eta_seconds')::numeric ELSE s.eta_seconds END,
    workers_active = coalesce((v_stats ->> 'workers_active')::int, s.workers_active),
    updated_at = clock_timestamp()
  WHERE s.snapshot_id = p_snapshot_id
  RETURNING * INTO v_row;
  IF v_row.snapshot_id IS NULL THEN
    PERFORM steep_repl.unknown_snapshot(p_snapshot_id);
  END IF;
  RETURN v_row;
END $$;
