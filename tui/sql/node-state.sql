-- One node as its own database sees it ($1 = node id), with what its state
-- allows: the TUI offers the same actions the state machine accepts.
SELECT o.node_id, o.init_state, o.init_in_progress, o.init_source_node,
       o.init_started_at, o.init_completed_at, o.status, o.last_seen,
       o.phase, o.overall_percent, o.tables_done, o.tables_total,
       o.rows_per_second, o.eta_seconds, o.lag_bytes, o.error,
       extract(epoch FROM now() - o.last_seen)::float8 AS seconds_since_seen,
       o.health,
       EXISTS (SELECT 1 FROM steep_repl.init_transitions t
               WHERE t.from_state = o.init_state AND t.to_state = 'preparing') AS can_start,
       (SELECT string_agg(t.from_state, ', ' ORDER BY t.from_state)
          FROM steep_repl.init_transitions t WHERE t.to_state = 'preparing') AS start_states,
       (o.init_in_progress OR o.init_state = 'failed')
         AND EXISTS (SELECT 1 FROM steep_repl.init_transitions t
                     WHERE t.from_state = o.init_state AND t.to_state = 'uninitialized') AS can_cancel
FROM steep_repl.node_overview o
WHERE o.node_id = $1
