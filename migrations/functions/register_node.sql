CREATE OR REPLACE FUNCTION steep_repl.register_node(
  p_node_id text,
  p_host text,
  p_port integer DEFAULT 5432,
  p_dbname text DEFAULT NULL,
  p_user_name text DEFAULT NULL,
  p_priority integer DEFAULT 50,
  p_node_name text DEFAULT NULL,
  p_is_local boolean DEFAULT false
) RETURNS steep_repl.nodes LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes;
BEGIN
  IF p_node_id IS NULL OR btrim(p_node_id) = '' THEN
    RAISE EXCEPTION 'node id must not be empty' USING ERRCODE = 'SR004';
  END IF;
  IF length(p_node_id) > 63 OR p_node_id ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'node id % is not valid: at most 63 characters, no control characters', quote_literal(p_node_id)
      USING ERRCODE = 'SR004';
  END IF;
  IF p_host IS NULL OR btrim(p_host) = '' THEN
    RAISE EXCEPTION 'host of node % must not be empty', quote_ident(p_node_id) USING ERRCODE = 'SR004';
  END IF;
  IF p_port IS NULL OR p_port NOT BETWEEN 1 AND 65535 THEN
    RAISE EXCEPTION 'port % of node % is outside 1-65535', p_port, quote_ident(p_node_id) USING ERRCODE = 'SR004';
  END IF;
  IF p_dbname IS NULL OR p_dbname = '' THEN
    RAISE EXCEPTION 'dbname of node % must not be empty', quote_ident(p_node_id) USING ERRCODE = 'SR004';
  END IF;
  IF p_priority IS NULL OR p_priority NOT BETWEEN 1 AND 100 THEN
    RAISE EXCEPTION 'priority % of node % is outside 1-100', p_priority, quote_ident(p_node_id) USING ERRCODE = 'SR004';
  END IF;
  IF EXISTS (SELECT 1 FROM steep_repl.nodes WHERE node_id = p_node_id) THEN
    RAISE EXCEPTION 'node % is already registered', quote_ident(p_node_id)
      USING ERRCODE = 'SR002', HINT = 'remove it first (steep-repl node remove) or choose another id';
  END IF;
  -- One database is one node: a second id for the same address would let two
  -- registry rows (and their inits) claim the same data. Host names are
  -- compared as written (case-insensitive): localhost and 127.0.0.1 differ.
  SELECT * INTO v_node FROM steep_repl.nodes
   WHERE lower(host) = lower(btrim(p_host)) AND port = p_port AND dbname = p_dbname
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION '%:%/% is already registered as node %', btrim(p_host), p_port, p_dbname, quote_ident(v_node.node_id)
      USING ERRCODE = 'SR004',
            HINT = format('use the id %s for it, or remove that registration first (steep-repl node remove %s)',
                          quote_ident(v_node.node_id), steep_repl.shell_word(v_node.node_id));
  END IF;
  IF p_is_local AND EXISTS (SELECT 1 FROM steep_repl.nodes WHERE is_local) THEN
    RAISE EXCEPTION 'this database is already registered as node %', quote_ident(steep_repl.local_node_id())
      USING ERRCODE = 'SR002';
  END IF;
  BEGIN
    INSERT INTO steep_repl.nodes (node_id, node_name, host, port, dbname, user_name, priority, is_local)
    VALUES (p_node_id, coalesce(nullif(p_node_name, ''), p_node_id), btrim(p_host), p_port, p_dbname,
            nullif(p_user_name, ''), p_priority, coalesce(p_is_local, false))
    RETURNING * INTO v_node;
  EXCEPTION WHEN unique_violation THEN
    -- a concurrent registration won the race past the checks above
    RAISE EXCEPTION 'node % (or the local node) was registered concurrently', quote_ident(p_node_id)
      USING ERRCODE = 'SR002';
  END;
  PERFORM steep_repl.emit_event('node.registered', p_node_id, jsonb_build_object(
    'host', v_node.host, 'port', v_node.port, 'dbname', v_node.dbname, 'user', v_node.user_name,
    'priority', v_node.priority, 'is_local', v_node.is_local));
  RETURN v_node;
END $$;
