-- A copy worker takes a part: it counts as one more copy of it from here.
CREATE OR REPLACE FUNCTION steep_repl.start_init_part(p_node_id text, p_leaf_schema text, p_leaf_name text, p_part_no integer, p_worker integer)
RETURNS steep_repl.init_parts LANGUAGE sql AS $$
  UPDATE steep_repl.init_parts
     SET state = 'copying', copies = copies + 1, worker = p_worker, rows_copied = 0, bytes_copied = 0,
         started_at = clock_timestamp(), finished_at = NULL
   WHERE node_id = p_node_id AND leaf_schema = p_leaf_schema AND leaf_name = p_leaf_name AND part_no = p_part_no
     AND state IN ('pending', 'copying')
  RETURNING *
$$;
