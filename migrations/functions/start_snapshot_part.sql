-- A worker takes a part: one more write of it from here (a part cut off
-- by a killed run is written again from its start).
CREATE OR REPLACE FUNCTION steep_repl.start_snapshot_part(p_snapshot_id text, p_leaf_schema text, p_leaf_name text, p_part_no integer,
                                                          p_worker integer)
RETURNS steep_repl.snapshot_parts LANGUAGE sql AS $$
  UPDATE steep_repl.snapshot_parts
     SET state = 'writing', writes = writes + 1, worker = p_worker, rows_written = 0, bytes_written = 0,
         started_at = clock_timestamp(), finished_at = NULL
   WHERE snapshot_id = p_snapshot_id AND leaf_schema = p_leaf_schema AND leaf_name = p_leaf_name AND part_no = p_part_no
     AND state IN ('pending', 'writing')
  RETURNING *
$$;
