CREATE OR REPLACE FUNCTION steep_repl.remove_node(p_node_id text) RETURNS steep_repl.nodes
LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes := steep_repl.get_node(p_node_id);
  v_objects text;
  v_fed text;
  v_detach text;
BEGIN
  IF (SELECT in_progress FROM steep_repl.init_states WHERE state = v_node.init_state) THEN
    RAISE EXCEPTION 'node % is %; cancel its initialization before removing it', quote_ident(p_node_id), v_node.init_state
      USING ERRCODE = 'SR006';
  END IF;
  IF EXISTS (SELECT 1 FROM steep_repl.nodes n JOIN steep_repl.init_states s ON s.state = n.init_state
             WHERE n.init_source_node = p_node_id AND s.in_progress) THEN
    RAISE EXCEPTION 'node % is the source of an initialization in progress', quote_ident(p_node_id)
      USING ERRCODE = 'SR006';
  END IF;
  -- A registration is how the agents find the other side of a pair: removing
  -- it while replication objects still join the two would leave them
  -- streaming, or holding WAL, with nothing that knows them (detach first).
  SELECT string_agg(format('%s %s (%s node %s)', o.kind, o.name, CASE o.direction WHEN 'from' THEN 'streaming from' ELSE 'for' END,
                           quote_ident(o.peer_node)), ', ' ORDER BY o.kind, o.name)
    INTO v_objects FROM steep_repl.replication_objects(p_node_id) o;
  -- The node to detach is the target of the pair: this one when it streams
  -- from p_node_id, else p_node_id.
  v_detach := CASE WHEN NOT v_node.is_local AND EXISTS (SELECT 1 FROM steep_repl.replication_objects(p_node_id) o WHERE o.direction = 'from')
                   THEN steep_repl.local_node_id() ELSE p_node_id END;
  IF v_objects IS NOT NULL THEN
    RAISE EXCEPTION 'node % still has replication objects in this database: %', quote_ident(p_node_id), v_objects
      USING ERRCODE = 'SR006',
            HINT = format('remove them first with: steep-repl node detach %s (SQL on its database: SELECT steep_repl.detach_node(%L)), then remove %s',
                          steep_repl.shell_word(v_detach), v_detach, steep_repl.shell_word(p_node_id));
  END IF;
  SELECT l.node_id INTO v_fed FROM steep_repl.nodes l
   WHERE l.init_source_node = p_node_id AND l.init_state IN ('synchronized', 'diverged', 'failed');
  IF v_fed IS NOT NULL THEN
    RAISE EXCEPTION 'node % is the source of node %, which is %', quote_ident(p_node_id), quote_ident(v_fed),
      (SELECT init_state FROM steep_repl.nodes WHERE node_id = v_fed)
      USING ERRCODE = 'SR006',
            HINT = format('detach it first: steep-repl node detach %s, then remove %s', steep_repl.shell_word(v_fed), steep_repl.shell_word(p_node_id));
  END IF;
  IF v_node.is_local AND v_node.init_state IN ('synchronized', 'diverged', 'failed') THEN
    RAISE EXCEPTION 'node % is %', quote_ident(p_node_id), v_node.init_state
      USING ERRCODE = 'SR006',
            HINT = format('detach it first: steep-repl node detach %s, then remove it', steep_repl.shell_word(p_node_id));
  END IF;
  UPDATE steep_repl.nodes SET init_source_node = NULL WHERE init_source_node = p_node_id;
  DELETE FROM steep_repl.nodes WHERE node_id = p_node_id;
  PERFORM steep_repl.emit_event('node.removed', p_node_id, '{}');
  RETURN v_node;
END $$;
