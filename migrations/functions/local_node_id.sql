CREATE OR REPLACE FUNCTION steep_repl.local_node_id() RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT node_id FROM steep_repl.nodes WHERE is_local
$$;
