-- Run on a target: its steep-repl subscriptions whose source is a
-- registered node, with where to reach that node (no password: the agent
-- connects as for any peer). The agent asks each source for its current
-- WAL position and the slot's confirmed position, and gives them to
-- observe_replication.
CREATE OR REPLACE FUNCTION steep_repl.replication_sources()
RETURNS TABLE (subscription text, source_node text, slot_name text, host text, port integer, dbname text, user_name text)
LANGUAGE sql STABLE AS $$
  SELECT o.name, n.node_id, s.subslotname::text, n.host, n.port, n.dbname, n.user_name
  FROM steep_repl.replication_objects() o
  JOIN pg_catalog.pg_subscription s
    ON s.subname = o.name AND s.subdbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
  JOIN steep_repl.nodes n ON n.node_id = o.peer_node AND NOT n.is_local
  WHERE o.kind = 'subscription'
  ORDER BY o.name
$$;
