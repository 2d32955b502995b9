-- Records the parts a direct init copies, once: a run that finds parts
-- already planned keeps them (they say what is done). p_parts: [{schema_name,
-- table_name, leaf_schema, leaf_name, part_no, part_count, split, key_column,
-- range_start, range_end, bytes_estimate, rows_estimate}]. Returns the number of parts.
CREATE OR REPLACE FUNCTION steep_repl.plan_init_parts(p_node_id text, p_parts jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM steep_repl.init_parts WHERE node_id = p_node_id) THEN
    INSERT INTO steep_repl.init_parts
      (node_id, schema_name, table_name, leaf_schema, leaf_name, part_no, part_count, split, key_column, range_start, range_end, bytes_estimate, rows_estimate)
    SELECT p_node_id, r.schema_name, r.table_name, r.leaf_schema, r.leaf_name, r.part_no, r.part_count, r.split, r.key_column,
           r.range_start, r.range_end, r.bytes_estimate, r.rows_estimate
    FROM jsonb_to_recordset(coalesce(p_parts, '[]'))
         AS r(schema_name text, table_name text, leaf_schema text, leaf_name text, part_no integer, part_count integer,
              split text, key_column text, range_start numeric, range_end numeric, bytes_estimate bigint, rows_estimate bigint);
  END IF;
  RETURN (SELECT count(*) FROM steep_repl.init_parts WHERE node_id = p_node_id);
END $$;
