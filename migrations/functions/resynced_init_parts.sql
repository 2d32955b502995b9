-- PostgreSQL's table sync has copied the tables whose parts were in resync.
CREATE OR REPLACE FUNCTION steep_repl.resynced_init_parts(p_node_id text)
RETURNS integer LANGUAGE sql AS $$
  WITH moved AS (
    UPDATE steep_repl.init_parts SET state = 'resynced', finished_at = clock_timestamp()
    WHERE node_id = p_node_id AND state = 'resync' RETURNING 1
  )
  SELECT count(*)::int FROM moved
$$;
