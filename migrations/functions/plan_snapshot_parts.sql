-- Records the tables and parts a generate writes, once: a run that finds
-- parts already planned keeps them (they say what is written). p_tables:
-- [{schema_name, table_name}]; p_parts: [{schema_name, table_name,
-- leaf_schema, leaf_name, part_no, part_count, split, key_column,
-- range_start, range_end, bytes_estimate, rows_estimate, file_name}].
-- Emits snapshot.parts_planned. Returns the number of parts.
CREATE OR REPLACE FUNCTION steep_repl.plan_snapshot_parts(p_snapshot_id text, p_tables jsonb, p_parts jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  v_row steep_repl.snapshots := steep_repl.get_snapshot(p_snapshot_id);
  v_count integer;
BEGIN
  IF EXISTS (SELECT 1 FROM steep_repl.snapshot_parts WHERE snapshot_id = p_snapshot_id) THEN
    RETURN (SELECT count(*) FROM steep_repl.snapshot_parts WHERE snapshot_id = p_snapshot_id);
  END IF;
  IF v_row.state <> 'generating' THEN
    RAISE EXCEPTION 'snapshot % is %, not generating', p_snapshot_id, v_row.state USING ERRCODE = 'SR003';
  END IF;
  INSERT INTO steep_repl.snapshot_parts
    (snapshot_id, schema_name, table_name, leaf_schema, leaf_name, part_no, part_count, split, key_column, range_start, range_end,
     bytes_estimate, rows_estimate, file_name)
  SELECT p_snapshot_id, r.schema_name, r.table_name, r.leaf_schema, r.leaf_name, r.part_no, r.part_count, r.split, r.key_column,
         r.range_start, r.range_end, r.bytes_estimate, r.rows_estimate, r.file_name
  FROM jsonb_to_recordset(coalesce(p_parts, '[]'))
       AS r(schema_name text, table_name text, leaf_schema text, leaf_name text, part_no integer, part_count integer,
            split text, key_column text, range_start numeric, range_end numeric, bytes_estimate bigint, rows_estimate bigint,
            file_name text);
  GET DIAGNOSTICS v_count = ROW_COUNT;
  UPDATE steep_repl.snapshots
     SET tables = (SELECT coalesce(jsonb_agg(jsonb_build_object('schema_name', t.schema_name, 'table_name', t.table_name)
                                             ORDER BY t.schema_name, t.table_name), '[]')
                     FROM jsonb_to_recordset(coalesce(p_tables, '[]')) AS t(schema_name text, table_name text)),
         updated_at = now()
   WHERE snapshot_id = p_snapshot_id;
  PERFORM steep_repl.emit_event('snapshot.parts_planned', v_row.source_node_id, jsonb_build_object(
    'snapshot_id', p_snapshot_id, 'consistent_lsn', v_row.consistent_lsn::text, 'tables', jsonb_array_length(coalesce(p_tables, '[]')),
    'parts', v_count,
    'bytes_estimate', (SELECT sum(bytes_estimate) FROM steep_repl.snapshot_parts WHERE snapshot_id = p_snapshot_id),
    'split', (SELECT coalesce(jsonb_agg(DISTINCT format('%I.%I', leaf_schema, leaf_name) || ' (' || split || ', ' || part_count || ')'), '[]')
                FROM steep_repl.snapshot_parts WHERE snapshot_id = p_snapshot_id AND part_count > 1)));
  RETURN v_count;
END $$;
