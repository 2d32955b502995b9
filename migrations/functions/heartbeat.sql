-- Called by the agent of this node every few seconds.
CREATE OR REPLACE FUNCTION steep_repl.heartbeat() RETURNS steep_repl.nodes
LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes;
BEGIN
  UPDATE steep_repl.nodes SET last_seen = now(), status = 'healthy' WHERE is_local RETURNING * INTO v_node;
  RETURN v_node;
END $$;
