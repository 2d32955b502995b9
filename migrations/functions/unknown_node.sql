CREATE OR REPLACE FUNCTION steep_repl.unknown_node(p_node_id text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'unknown node %', quote_nullable(p_node_id)
    USING ERRCODE = 'SR001',
          HINT = coalesce('registered nodes: ' || (SELECT string_agg(quote_ident(node_id), ', ' ORDER BY node_id)
                                                   FROM steep_repl.nodes),
                          'no node is registered; use steep-repl node register');
END $$;
