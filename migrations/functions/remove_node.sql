CREATE OR REPLACE FUNCTION steep_repl.remove_node(p_node_id text) RETURNS steep_repl.nodes
LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes := steep_repl.get_node(p_node_id);
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
  UPDATE steep_repl.nodes SET init_source_node = NULL WHERE init_source_node = p_node_id;
  DELETE FROM steep_repl.nodes WHERE node_id = p_node_id;
  PERFORM steep_repl.emit_event('node.removed', p_node_id, '{}');
  RETURN v_node;
END $$;
