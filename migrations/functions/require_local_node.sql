-- Refuses (SR004) a call made on another database than the node's own:
-- what p_function changes lives there. The hint names the node's address
-- and the CLI command that finds it from the registry.
CREATE OR REPLACE FUNCTION steep_repl.require_local_node(p_function text, p_node text, p_command text, p_role text DEFAULT 'node')
RETURNS void LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_local text := steep_repl.local_node_id();
  v_node steep_repl.nodes;
BEGIN
  IF v_local IS DISTINCT FROM p_node THEN
    v_node := steep_repl.get_node(p_node);
    RAISE EXCEPTION '% runs on the database of % %; this database is %', p_function, p_role, quote_ident(p_node),
      coalesce('node ' || quote_ident(v_local), 'not registered as a local node')
      USING ERRCODE = 'SR004',
            HINT = format('connect to %s:%s/%s and run it there (steep-repl %s finds it from the registry)',
                          v_node.host, v_node.port, v_node.dbname, p_command);
  END IF;
END $$;
