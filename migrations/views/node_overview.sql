-- Every registered node with its health, its init and what its state allows
-- (the live view offers the same actions the state machine accepts).
CREATE OR REPLACE VIEW steep_repl.node_overview AS
SELECT n.node_id, n.node_name, n.host, n.port, n.dbname, n.user_name, n.priority,
       n.status, n.last_seen, n.is_local,
       -- This database's own row is only as fresh as its agent's heartbeat
       -- (every 5 s by default): offline without one for 15 s; degraded
       -- while a watched subscription or slot is (replication_health), or
       -- while the agent heartbeats but its watch never observed or stopped
       -- (nodes.replication_observed_at).
       -- A peer's row says what its last probe saw.
       CASE WHEN NOT n.is_local THEN n.status
            WHEN n.last_seen IS NULL OR now() - n.last_seen > interval '15 seconds' THEN 'offline'
            WHEN rh.degraded > 0 OR w.unobserved THEN 'degraded'
            ELSE 'healthy' END AS health,
       n.init_state, s.in_progress AS init_in_progress, n.init_source_node,
       n.init_started_at, n.init_completed_at,
       p.phase, p.overall_percent, p.tables_done, p.tables_total,
       p.rows_per_second, p.eta_seconds, p.lag_bytes, p.error,
       p.method,
       extract(epoch FROM now() - n.last_seen)::float8 AS seconds_since_seen,
       EXISTS (SELECT 1 FROM steep_repl.init_transitions t
               WHERE t.from_state = n.init_state AND t.to_state = 'preparing') AS can_start,
       (SELECT string_agg(t.from_state, ', ' ORDER BY t.from_state)
          FROM steep_repl.init_transitions t WHERE t.to_state = 'preparing') AS start_states,
       (s.in_progress OR n.init_state = 'failed')
         AND EXISTS (SELECT 1 FROM steep_repl.init_transitions t
                     WHERE t.from_state = n.init_state AND t.to_state = 'uninitialized') AS can_cancel,
       -- Slots this database holds for a later init (steep_repl.prepared_slots):
       -- how many and the WAL they keep, on the local row only (a peer's
       -- slots are in its own database).
       ps.slots AS prepared_slots, ps.retained_bytes AS prepared_retained_bytes,
       ps.next_expiry AS prepared_next_expiry,
       -- What a verify found that persists (steep_repl.node_divergence, kept
       -- in the node's own database): the tables, their counts and the
       -- verify that found them; 0 and [] elsewhere.
       coalesce(dv.tables, 0) AS diverged_tables, coalesce(dv.divergence, '[]') AS divergence,
       -- The node's newest verify (running, or how the last one ended),
       -- with the table it is on: the live view's bar and node status.
       lv.last_verify, coalesce(lv.last_verify ->> 'state' IN ('queued', 'running'), false) AS verify_running,
       -- A reinit in progress: its scope, tables and step (NULL for an init).
       p.reinit,
       n.init_state IN ('synchronized', 'diverged') AS can_verify,
       -- a merged node replicates both ways: start_reinit refuses it
       EXISTS (SELECT 1 FROM steep_repl.init_transitions t
               WHERE t.from_state = n.init_state AND t.to_state = 'reinitializing')
         AND p.method IS DISTINCT FROM 'merge' AS can_reinit,
       -- A merge in progress on this node (init_progress.merge: its peer,
       -- role, step), and the node's newest merge run: runs live in the
       -- database of node A (the coordinator), so NULL elsewhere.
       p.merge, lm.last_merge,
       -- Why the node is not healthy, in words a DBA acts on (NULL when it is).
       CASE WHEN NOT n.is_local THEN
              CASE n.status WHEN 'unreachable' THEN 'the last probe from this node could not reach it' END
            WHEN n.last_seen IS NULL THEN
              format('no agent has run for this node: start steep-repl agent --db <url of %s>', quote_ident(n.node_id))
            WHEN now() - n.last_seen > interval '15 seconds' THEN
              format('agent silent for %s (last heartbeat %s): is steep-repl agent running?',
                     steep_repl.health_duration(extract(epoch FROM now() - n.last_seen)), to_char(n.last_seen, 'HH24:MI:SS'))
            ELSE nullif(concat_ws('; ',
                   CASE WHEN w.unobserved THEN
                     'the agent heartbeats but its replication watch has not observed '
                     || CASE WHEN n.replication_observed_at IS NULL THEN 'yet'
                             ELSE format('for %s (last at %s)',
                                         steep_repl.health_duration(extract(epoch FROM now() - n.replication_observed_at)),
                                         to_char(n.replication_observed_at, 'HH24:MI:SS')) END
                     || ': an agent older than 0.9.0, --no-health-watch, or failing rounds (health.watch_failed in the agent log)' END,
                   rh.reasons), '') END AS health_reason,
       -- The local node's watched subscriptions and slots (replication_health
       -- rows as objects, kind then name); [] elsewhere. The lag is the
       -- largest over its subscriptions, NULL when none is measured.
       coalesce(rh.replication, '[]') AS replication,
       rh.lag_bytes AS replication_lag_bytes, rh.lag_seconds AS replication_lag_seconds,
       CASE WHEN n.is_local THEN n.replication_observed_at END AS replication_observed_at
FROM steep_repl.nodes n
JOIN steep_repl.init_states s ON s.state = n.init_state
LEFT JOIN steep_repl.init_progress p ON p.node_id = n.node_id
LEFT JOIN LATERAL (SELECT count(*)::int AS slots, sum(x.retained_bytes)::bigint AS retained_bytes, min(x.expires_at) AS next_expiry
                   FROM steep_repl.prepared_slots() x) ps ON n.is_local
LEFT JOIN LATERAL (SELECT count(*)::int AS tables,
                          jsonb_agg(jsonb_build_object(
                              'schema_name', d.schema_name, 'table_name', d.table_name,
                              'label', format('%I.%I', d.schema_name, d.table_name),
                              'peer_node_id', d.peer_node_id, 'verify_id', d.verify_id,
                              'rows_missing', d.rows_missing, 'rows_extra', d.rows_extra, 'rows_different', d.rows_different,
                              'found_at', d.found_at)
                            ORDER BY d.schema_name, d.table_name) AS divergence
                   FROM steep_repl.node_divergence d WHERE d.node_id = n.node_id) dv ON true
LEFT JOIN LATERAL (SELECT jsonb_build_object(
                            'verify_id', r.verify_id, 'peer_node_id', r.peer_node_id, 'reason', r.reason,
                            'state', r.state, 'phase', r.phase, 'percent', r.percent,
                            'tables_total', r.tables_total, 'tables_done', r.tables_done,
                            'tables_differing', (SELECT count(*)::int FROM steep_repl.verify_tables t
                                                  WHERE t.verify_id = r.verify_id AND t.status = 'differs'),
                            'current_table', (SELECT format('%I.%I', t.schema_name, t.table_name) FROM steep_repl.verify_tables t
                                               WHERE t.verify_id = r.verify_id AND t.status IN ('hashing', 'drilling', 'rechecking')
                                               ORDER BY t.started_at DESC NULLS LAST LIMIT 1),
                            'rows_compared', r.rows_compared, 'error', r.error,
                            'requested_at', r.requested_at, 'started_at', r.started_at, 'finished_at', r.finished_at) AS last_verify
                   FROM steep_repl.verify_runs r WHERE r.node_id = n.node_id
                  ORDER BY r.verify_id DESC LIMIT 1) lv ON true
LEFT JOIN LATERAL (SELECT jsonb_build_object(
                            'merge_id', r.merge_id, 'node_a', r.node_a, 'node_b', r.node_b,
                            'peer_node_id', CASE WHEN r.node_a = n.node_id THEN r.node_b ELSE r.node_a END,
                            'mode', r.mode, 'strategy', r.strategy, 'state', r.state, 'phase', r.phase,
                            'step', r.step, 'percent', r.percent,
                            'tables_total', r.tables_total, 'tables_done', r.tables_done,
                            'rows_identical', r.rows_identical, 'rows_only_a', r.rows_only_a,
                            'rows_only_b', r.rows_only_b, 'rows_conflicting', r.rows_conflicting,
                            'rows_to_a', r.rows_to_a, 'rows_to_b', r.rows_to_b,
                            'conflicts_unresolved', (SELECT count(*)::int FROM steep_repl.merge_conflicts c
                                                      WHERE c.merge_id = r.merge_id AND c.resolution IS NULL),
                            'error', r.error, 'hint', r.hint, 'failure_kind', r.failure_kind,
                            'requested_at', r.requested_at, 'started_at', r.started_at, 'finished_at', r.finished_at) AS last_merge
                   FROM steep_repl.merge_runs r WHERE n.node_id IN (r.node_a, r.node_b)
                  ORDER BY r.merge_id DESC LIMIT 1) lm ON true
LEFT JOIN LATERAL (SELECT count(*) FILTER (WHERE h.status = 'degraded')::int AS degraded,
                          string_agg(h.reason, '; ' ORDER BY h.kind, h.name) FILTER (WHERE h.status = 'degraded') AS reasons,
                          jsonb_agg(to_jsonb(h) ORDER BY h.kind, h.name) AS replication,
                          max(h.lag_bytes) FILTER (WHERE h.kind = 'subscription') AS lag_bytes,
                          max(h.lag_seconds) FILTER (WHERE h.kind = 'subscription') AS lag_seconds
                   FROM steep_repl.replication_health h WHERE h.node_id = n.node_id) rh ON n.is_local
-- The watch completes a round every interval: none yet, or none for three
-- intervals (and 10 s), means it does not run.
LEFT JOIN LATERAL (SELECT n.replication_observed_at IS NULL
                          OR n.replication_observed_at < now() - make_interval(secs => 3 * coalesce(
                               (SELECT hs.watch_interval_seconds FROM steep_repl.health_settings hs), 5)::float8 + 10) AS unobserved) w
  ON n.is_local;
