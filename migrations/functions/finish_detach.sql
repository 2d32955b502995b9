-- Records on a node's own database that its replication was removed (by
-- node detach of it or of its source): the node returns to uninitialized,
-- its init progress goes, and node.detached carries what was removed and
-- what a check found left. Its rows stay.
CREATE OR REPLACE FUNCTION steep_repl.finish_detach(p_node_id text, p_details jsonb DEFAULT '{}')
RETURNS steep_repl.nodes LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes := steep_repl.get_node(p_node_id);
BEGIN
  SELECT * INTO v_node FROM steep_repl.nodes WHERE node_id = p_node_id FOR UPDATE;
  IF (SELECT in_progress FROM steep_repl.init_states WHERE state = v_node.init_state) THEN
    RAISE EXCEPTION 'node % is %: an initialization is in progress', quote_ident(p_node_id), v_node.init_state
      USING ERRCODE = 'SR006', HINT = 'cancel it first (steep-repl node cancel)';
  END IF;
  IF v_node.init_state <> 'uninitialized' THEN
    v_node := steep_repl.transition(p_node_id, 'uninitialized', jsonb_build_object(
      'reason', coalesce(p_details ->> 'reason', 'detached from replication')));
  END IF;
  UPDATE steep_repl.nodes SET init_source_node = NULL WHERE node_id = p_node_id RETURNING * INTO v_node;
  DELETE FROM steep_repl.init_table_progress WHERE node_id = p_node_id;
  DELETE FROM steep_repl.init_progress WHERE node_id = p_node_id;
  PERFORM steep_repl.emit_event('node.detached', p_node_id, coalesce(p_details, '{}'));
  RETURN v_node;
END $$;
