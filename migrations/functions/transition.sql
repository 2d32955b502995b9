CREATE OR REPLACE FUNCTION steep_repl.transition(p_node_id text, p_to_state text, p_details jsonb DEFAULT '{}')
RETURNS steep_repl.nodes LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes;
BEGIN
  -- Locked, so a concurrent remove_node cannot leave the UPDATE below empty.
  PERFORM 1 FROM steep_repl.nodes WHERE node_id = p_node_id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM steep_repl.unknown_node(p_node_id);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM steep_repl.init_states WHERE state = p_to_state) THEN
    RAISE EXCEPTION 'unknown init_state %', quote_nullable(p_to_state)
      USING ERRCODE = 'SR004',
            HINT = 'states: ' || (SELECT string_agg(state, ', ' ORDER BY state) FROM steep_repl.init_states);
  END IF;
  PERFORM set_config('steep_repl.transition_details', coalesce(p_details, '{}')::text, true);
  UPDATE steep_repl.nodes SET init_state = p_to_state WHERE node_id = p_node_id RETURNING * INTO v_node;
  PERFORM set_config('steep_repl.transition_details', '', true);
  RETURN v_node;
END $$;
