CREATE OR REPLACE FUNCTION steep_repl.get_node(p_node_id text) RETURNS steep_repl.nodes
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_node steep_repl.nodes;
BEGIN
  SELECT * INTO v_node FROM steep_repl.nodes WHERE node_id = p_node_id;
  IF NOT FOUND THEN
    PERFORM steep_repl.unknown_node(p_node_id);
  END IF;
  RETURN v_node;
END $$;
