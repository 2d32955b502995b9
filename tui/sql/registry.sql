-- The nodes the registry of the --db node knows, in `node list` order.
SELECT node_id, node_name, host, port, dbname, user_name, priority, is_local,
       init_state, status, last_seen, init_source_node
FROM steep_repl.nodes
ORDER BY priority DESC, node_id
