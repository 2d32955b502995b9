-- Called by the agent of this node every few seconds. The node's status
-- follows its replication too: degraded while a watched subscription or
-- slot is (steep_repl.replication_health, kept by observe_replication).
CREATE OR REPLACE FUNCTION steep_repl.heartbeat() RETURNS steep_repl.nodes
LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes;
BEGIN
  UPDATE steep_repl.nodes
     SET last_seen = now(),
         status = CASE WHEN EXISTS (SELECT 1 FROM steep_repl.replication_health h WHERE h.status = 'degraded')
                       THEN 'degraded' ELSE 'healthy' END
   WHERE is_local RETURNING * INTO v_node;
  RETURN v_node;
END $$;
