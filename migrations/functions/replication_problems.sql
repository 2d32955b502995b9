-- The decision on one replication_health row (its facts and the rates and
-- lag observe_replication derived): the problem codes, in this order, and
-- their phrases joined by '; ' (NULL when there is none). p_quiet is how
-- long an error counter must stay still before its problem ends: a worker
-- failing in a loop errs at least once per wal_retrieve_retry_interval.
-- Names are written as PostgreSQL quotes them (%I), nodes as quote_ident,
-- command arguments as a shell reads them back.
CREATE OR REPLACE FUNCTION steep_repl.replication_problems(
  h steep_repl.replication_health, s steep_repl.health_settings, p_quiet interval, p_now timestamptz DEFAULT now())
RETURNS TABLE (problems text[], reason text)
LANGUAGE sql STABLE AS $$
  WITH words AS (
    SELECT coalesce(quote_ident(h.peer_node_id), 'an unregistered node') AS peer,
           quote_ident(h.node_id) AS here,
           steep_repl.health_duration(s.error_window_seconds) AS in_window,
           -- "3 insert_exists conflicts", recent ones only, most first
           (SELECT string_agg(format('%s %s', c.value, c.key), ', ' ORDER BY c.value::bigint DESC, c.key)
              FROM jsonb_each_text(h.conflicts_recent) c WHERE c.value::bigint > 0) AS conflicts_text,
           (SELECT string_agg(format('%s %s', c.value, c.key), ', ' ORDER BY c.value::bigint DESC, c.key)
              FROM jsonb_each_text(h.conflicts_recent) c
             WHERE c.value::bigint > 0 AND c.key IN ('update_missing', 'delete_missing', 'update_deleted')) AS divergence_text,
           (SELECT sum(c.value::bigint) FROM jsonb_each_text(h.conflicts_recent) c) AS conflicts_count,
           (SELECT sum(c.value::bigint) FROM jsonb_each_text(h.conflicts_recent) c
             WHERE c.key IN ('update_missing', 'delete_missing', 'update_deleted')) AS divergence_count,
           h.kind = 'subscription' AND h.apply_errors_changed_at >= p_now - p_quiet AS apply_failing,
           -- While its init runs, the subscription is the init's: disabled
           -- during a copy, without a worker, lagging while it catches up,
           -- as planned; the init's progress says so. Errors still count.
           coalesce((SELECT n.init_state IN ('preparing', 'copying', 'catching_up') FROM steep_repl.nodes n
                      WHERE n.node_id = h.node_id), false) AS initializing
  ), found AS (
    SELECT v.position, v.code, v.phrase
    FROM words w
    CROSS JOIN LATERAL (VALUES
      -- subscriptions
      (1, 'disabled', h.kind = 'subscription' AND NOT h.enabled AND NOT w.initializing,
       format('subscription %I from node %s is disabled: nothing replicates; enable it with ALTER SUBSCRIPTION %I ENABLE',
              h.name, w.peer, h.name)),
      (2, 'apply_errors', w.apply_failing,
       format('apply worker failing: %s %s in %s%s — see the server log of node %s for the row and the transaction''s finish LSN; '
              'resolve the row, or skip the transaction with ALTER SUBSCRIPTION %I SKIP (lsn = ''<finish LSN>'')',
              -- a rise within the quiet period is at least one error, also in a window shorter than that period
              greatest(h.apply_errors_recent, 1), CASE WHEN greatest(h.apply_errors_recent, 1) = 1 THEN 'error' ELSE 'errors' END, w.in_window,
              ', ' || w.conflicts_text || CASE WHEN w.conflicts_count = 1 THEN ' conflict' ELSE ' conflicts' END,
              w.here, h.name)),
      (3, 'sync_errors', h.kind = 'subscription' AND h.sync_errors_changed_at >= p_now - p_quiet,
       format('table sync failing: %s %s in %s — see the server log of node %s for the table and the error; '
              'fix its cause (a row already there, a missing table or privilege) and the worker retries by itself',
              greatest(h.sync_errors_recent, 1), CASE WHEN greatest(h.sync_errors_recent, 1) = 1 THEN 'error' ELSE 'errors' END, w.in_window, w.here)),
      (4, 'conflicts', h.kind = 'subscription' AND w.divergence_count > 0,
       format('%s %s in %s: node %s lacks rows node %s changed; check with steep-repl node verify %s',
              w.divergence_text, CASE WHEN w.divergence_count = 1 THEN 'conflict' ELSE 'conflicts' END, w.in_window,
              w.here, w.peer, steep_repl.shell_word(h.node_id))),
      (5, 'worker_missing',
       h.kind = 'subscription' AND h.enabled AND h.worker_pid IS NULL AND NOT coalesce(w.apply_failing, false) AND NOT w.initializing
         AND h.worker_missing_since <= p_now - make_interval(secs => s.worker_missing_seconds),
       format('no apply worker for %I for %s: see the server log of node %s (max_logical_replication_workers?)',
              h.name, steep_repl.health_duration(extract(epoch FROM p_now - h.worker_missing_since)), w.here)),
      (6, 'source_unreachable', h.kind = 'subscription' AND h.source_error IS NOT NULL,
       format('cannot reach source node %s to measure lag: %s', w.peer, h.source_error)),
      (7, 'lag_bytes', h.kind = 'subscription' AND h.lag_bytes > s.lag_bytes AND NOT w.initializing,
       format('lag %s%s (more than %s): node %s applies more slowly than node %s writes; see pg_stat_subscription and the server log of node %s',
              pg_size_pretty(h.lag_bytes), CASE h.lag_trend WHEN 'growing' THEN ' and growing' WHEN 'shrinking' THEN ' and shrinking' ELSE '' END,
              pg_size_pretty(s.lag_bytes), w.here, w.peer, w.here)),
      (8, 'lag_seconds', h.kind = 'subscription' AND h.lag_seconds > s.lag_seconds AND NOT w.initializing,
       format('lag %s (more than %s): node %s applied what node %s had written by %s',
              steep_repl.health_duration(h.lag_seconds), steep_repl.health_duration(s.lag_seconds), w.here, w.peer,
              to_char(p_now - make_interval(secs => h.lag_seconds::float8), 'HH24:MI:SS'))),
      -- slots (this node is their source)
      (11, 'slot_lost', h.kind = 'slot' AND h.wal_status = 'lost',
       CASE WHEN h.prepared
            THEN format('slot %I prepared for node %s lost WAL it needed: it can no longer start an init; drop it and prepare again',
                        h.name, w.peer)
            ELSE format('slot %I for node %s lost WAL it needed: node %s must be initialized again (steep-repl node start %s --from %s --force)',
                        h.name, w.peer, w.peer, steep_repl.shell_word(coalesce(h.peer_node_id, '<node>')), steep_repl.shell_word(h.node_id)) END),
      (12, 'slot_unreserved', h.kind = 'slot' AND h.wal_status = 'unreserved',
       format('slot %I for node %s retains %s, wal_status unreserved: the next checkpoint may remove WAL node %s still needs',
              h.name, w.peer, pg_size_pretty(h.retained_bytes), w.peer)),
      (13, 'slot_safe_wal', h.kind = 'slot' AND h.wal_status NOT IN ('lost', 'unreserved') AND h.safe_wal_size < s.slot_safe_wal_bytes,
       format('slot %I for node %s can retain only %s more WAL (less than %s) before max_slot_wal_keep_size removes WAL node %s needs: '
              'let node %s catch up, or raise max_slot_wal_keep_size',
              h.name, w.peer, pg_size_pretty(greatest(h.safe_wal_size, 0)), pg_size_pretty(s.slot_safe_wal_bytes), w.peer, w.peer)),
      (14, 'slot_retained', h.kind = 'slot' AND h.retained_bytes > s.slot_retained_bytes,
       format('slot %I for node %s retains %s of WAL (more than %s): node %s lags or is away',
              h.name, w.peer, pg_size_pretty(h.retained_bytes), pg_size_pretty(s.slot_retained_bytes), w.peer)),
      (15, 'slot_inactive',
       h.kind = 'slot' AND NOT coalesce(h.prepared, false) AND NOT h.slot_active
         AND h.inactive_seen_since <= p_now - make_interval(secs => s.slot_inactive_seconds),
       format('slot %I for node %s not in use for %s: its subscription is disabled, node %s is down, or an init of node %s still copies',
              h.name, w.peer, steep_repl.health_duration(extract(epoch FROM p_now - h.inactive_seen_since)), w.peer, w.peer))
    ) v(position, code, hit, phrase)
    WHERE v.hit
  )
  SELECT coalesce(array_agg(f.code ORDER BY f.position), '{}'), string_agg(f.phrase, '; ' ORDER BY f.position)
  FROM found f
$$;
