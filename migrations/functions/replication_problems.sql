-- The decision on one replication_health row (its facts and the rates and
-- lag observe_replication derived; h.problems still the previous round's):
-- the problem codes, in this order, and their phrases joined by '; ' (NULL
-- when there is none). Names are written as PostgreSQL quotes them (%I),
-- nodes as quote_ident, command arguments as a shell reads them back.
--
-- Problems do not flap: p_quiet is how long an error counter must stay
-- still before its problem ends (a worker failing in a loop errs at least
-- once per wal_retrieve_retry_interval), and apply errors end only once the
-- source's slot also moved past where it stood at the last error (a long
-- failure cycle, a big transaction decoded again, is quiet for longer than
-- that; at most error_window_seconds after the last error). A threshold's
-- problem that is present ends only 10 % on the good side of it; a source
-- must fail two rounds in a row to be unreachable.
CREATE OR REPLACE FUNCTION steep_repl.replication_problems(
  h steep_repl.replication_health, s steep_repl.health_settings, p_quiet interval, p_now timestamptz DEFAULT now())
RETURNS TABLE (problems text[], reason text)
LANGUAGE sql STABLE AS $$
  WITH node AS (
    SELECT n.init_state FROM steep_repl.nodes n WHERE n.node_id = h.node_id
  ), words AS (
    SELECT coalesce(quote_ident(h.peer_node_id), 'an unregistered node') AS peer,
           quote_ident(h.node_id) AS here,
           steep_repl.shell_word(coalesce(h.peer_node_id, '<node>')) AS peer_arg,
           steep_repl.shell_word(h.node_id) AS here_arg,
           steep_repl.health_duration(s.error_window_seconds) AS in_window,
           p_now - make_interval(secs => s.error_window_seconds) AS window_start,
           -- "3 insert_exists conflicts", recent ones only, most first
           (SELECT string_agg(format('%s %s', c.value, c.key), ', ' ORDER BY c.value::bigint DESC, c.key)
              FROM jsonb_each_text(h.conflicts_recent) c WHERE c.value::bigint > 0) AS conflicts_text,
           (SELECT string_agg(format('%s %s', c.value, c.key), ', ' ORDER BY c.value::bigint DESC, c.key)
              FROM jsonb_each_text(h.conflicts_recent) c
             WHERE c.value::bigint > 0 AND c.key IN ('update_missing', 'delete_missing', 'update_deleted')) AS divergence_text,
           (SELECT sum(c.value::bigint) FROM jsonb_each_text(h.conflicts_recent) c) AS conflicts_count,
           (SELECT sum(c.value::bigint) FROM jsonb_each_text(h.conflicts_recent) c
             WHERE c.key IN ('update_missing', 'delete_missing', 'update_deleted')) AS divergence_count,
           -- While its init runs, the subscription is the init's: disabled
           -- during a copy, without a worker, lagging while it catches up,
           -- as planned; the init's progress says so. Errors still count.
           coalesce((SELECT n.init_state IN ('preparing', 'copying', 'catching_up') FROM node n), false) AS initializing,
           coalesce((SELECT n.init_state = 'failed' FROM node n), false) AS init_failed,
           -- a prepared slot's row: what it waits for, until when
           i.purpose AS prepared_for, to_char(i.expires_at, 'YYYY-MM-DD HH24:MI TZ') AS expires
      FROM (SELECT 1) one
      LEFT JOIN steep_repl.init_slots i ON h.prepared AND i.slot_name = h.name
  ), failing AS (
    SELECT -- errors within the quiet period; or, once present, until the
           -- slot moved past the last error's position (or the lag is gone,
           -- or the position is unknown), at most the error window
           h.kind = 'subscription' AND (h.apply_errors_changed_at >= p_now - p_quiet
             OR 'apply_errors' = ANY (h.problems) AND h.apply_errors_changed_at >= w.window_start
                AND coalesce(h.lag_bytes > 0 AND h.source_confirmed_lsn <= h.apply_errors_lsn, false)) AS apply,
           -- table sync likewise, until no table of it is left to sync
           h.kind = 'subscription' AND (h.sync_errors_changed_at >= p_now - p_quiet
             OR 'sync_errors' = ANY (h.problems) AND h.sync_errors_changed_at >= w.window_start
                AND coalesce(h.tables_syncing > 0, false)) AS sync,
           -- a threshold crossed, or still within 10 % of it once crossed
           h.lag_bytes > s.lag_bytes OR 'lag_bytes' = ANY (h.problems) AND h.lag_bytes >= 0.9 * s.lag_bytes AS lag_bytes,
           h.lag_seconds > s.lag_seconds OR 'lag_seconds' = ANY (h.problems) AND h.lag_seconds >= 0.9 * s.lag_seconds AS lag_seconds,
           h.retained_bytes > s.slot_retained_bytes
             OR 'slot_retained' = ANY (h.problems) AND h.retained_bytes >= 0.9 * s.slot_retained_bytes AS slot_retained,
           h.safe_wal_size < s.slot_safe_wal_bytes
             OR 'slot_safe_wal' = ANY (h.problems) AND h.safe_wal_size <= 1.1 * s.slot_safe_wal_bytes AS slot_safe_wal
      FROM words w
  ), found AS (
    SELECT v.position, v.code, v.phrase
    FROM words w
    CROSS JOIN failing f
    CROSS JOIN LATERAL (VALUES
      -- subscriptions
      (1, 'disabled', h.kind = 'subscription' AND NOT h.enabled AND NOT w.initializing,
       CASE WHEN w.init_failed
            THEN format('subscription %I from node %s is disabled: the init of node %s failed (steep-repl node status %s); '
                        'start it again with steep-repl node start %s --from %s --force, or cancel it (steep-repl node cancel %s)',
                        h.name, w.peer, w.here, w.here_arg, w.here_arg, w.peer_arg, w.here_arg)
            -- enabling it cannot help: source_slot_missing says what does
            WHEN h.slot_name IS NOT NULL AND h.source_slot_exists = false
            THEN format('subscription %I from node %s is disabled, and enabling it cannot help: its slot is gone', h.name, w.peer)
            ELSE format('subscription %I from node %s is disabled: nothing replicates; enable it with ALTER SUBSCRIPTION %I ENABLE',
                        h.name, w.peer, h.name) END),
      (2, 'apply_errors', f.apply,
       format('apply worker failing: %s %s in %s%s — see the server log of node %s for the row and the transaction''s finish LSN; '
              'resolve the row, or skip the transaction with ALTER SUBSCRIPTION %I SKIP (lsn = ''<finish LSN>'')',
              -- a rise within the quiet period is at least one error, also in a window shorter than that period
              greatest(h.apply_errors_recent, 1), CASE WHEN greatest(h.apply_errors_recent, 1) = 1 THEN 'error' ELSE 'errors' END, w.in_window,
              ', ' || w.conflicts_text || CASE WHEN w.conflicts_count = 1 THEN ' conflict' ELSE ' conflicts' END,
              w.here, h.name)),
      (3, 'sync_errors', f.sync,
       format('table sync failing: %s %s in %s — see the server log of node %s for the table and the error; '
              'fix its cause (a row already there, a missing table or privilege) and the worker retries by itself',
              greatest(h.sync_errors_recent, 1), CASE WHEN greatest(h.sync_errors_recent, 1) = 1 THEN 'error' ELSE 'errors' END, w.in_window, w.here)),
      (4, 'conflicts', h.kind = 'subscription' AND w.divergence_count > 0,
       format('%s %s in %s: node %s lacks rows node %s changed; check with steep-repl node verify %s',
              w.divergence_text, CASE WHEN w.divergence_count = 1 THEN 'conflict' ELSE 'conflicts' END, w.in_window,
              w.here, w.peer, w.here_arg)),
      (5, 'worker_missing',
       h.kind = 'subscription' AND h.enabled AND h.worker_pid IS NULL AND NOT coalesce(f.apply, false) AND NOT w.initializing
         AND h.worker_missing_since <= p_now - make_interval(secs => s.worker_missing_seconds),
       format('no apply worker for %I for %s: see the server log of node %s (max_logical_replication_workers?)',
              h.name, steep_repl.health_duration(extract(epoch FROM p_now - h.worker_missing_since)), w.here)),
      -- one failed connection is no problem yet: the second round in a row is
      (6, 'source_unreachable', h.kind = 'subscription' AND h.source_error IS NOT NULL AND h.source_error_since < p_now,
       format('cannot reach source node %s to measure lag: %s', w.peer, h.source_error)),
      (7, 'source_slot_missing',
       h.kind = 'subscription' AND h.slot_name IS NOT NULL AND h.source_slot_exists = false AND NOT w.initializing,
       -- (quote_ident: a slot's row has no slot_name, and %I refuses NULL)
       format('the slot %s of subscription %I is missing on source node %s: nothing can replicate; '
              'initialize node %s again (steep-repl node start %s --from %s --force)',
              quote_ident(h.slot_name), h.name, w.peer, w.here, w.here_arg, w.peer_arg)),
      (8, 'lag_bytes', h.kind = 'subscription' AND f.lag_bytes AND NOT w.initializing,
       format('lag %s%s (%s): node %s applies more slowly than node %s writes; see pg_stat_subscription and the server log of node %s',
              pg_size_pretty(h.lag_bytes), CASE h.lag_trend WHEN 'growing' THEN ' and growing' WHEN 'shrinking' THEN ' and shrinking' ELSE '' END,
              CASE WHEN h.lag_bytes > s.lag_bytes THEN format('more than %s', pg_size_pretty(s.lag_bytes))
                   ELSE format('was more than %s; healthy again below %s', pg_size_pretty(s.lag_bytes), pg_size_pretty((0.9 * s.lag_bytes)::bigint)) END,
              w.here, w.peer, w.here)),
      (9, 'lag_seconds', h.kind = 'subscription' AND f.lag_seconds AND NOT w.initializing,
       CASE WHEN h.lag_seconds_at_least
            -- every sample kept was already past the confirmed position
            THEN format('lag more than %s: node %s has applied nothing node %s wrote in the last %s',
                        steep_repl.health_duration(h.lag_seconds), w.here, w.peer, steep_repl.health_duration(h.lag_seconds))
            ELSE format('lag %s (%s): node %s applied what node %s had written by %s',
                        steep_repl.health_duration(h.lag_seconds),
                        CASE WHEN h.lag_seconds > s.lag_seconds THEN format('more than %s', steep_repl.health_duration(s.lag_seconds))
                             ELSE format('was more than %s; healthy again below %s', steep_repl.health_duration(s.lag_seconds),
                                         steep_repl.health_duration(0.9 * s.lag_seconds)) END,
                        w.here, w.peer, to_char(p_now - make_interval(secs => h.lag_seconds::float8), 'HH24:MI:SS')) END),
      -- slots (this node is their source)
      (11, 'slot_lost', h.kind = 'slot' AND h.wal_status = 'lost',
       CASE WHEN h.prepared
            THEN format('slot %I prepared for node %s lost WAL it needed: it can no longer start an init; drop it and prepare again',
                        h.name, w.peer)
            ELSE format('slot %I for node %s lost WAL it needed: node %s must be initialized again (steep-repl node start %s --from %s --force)',
                        h.name, w.peer, w.peer, w.peer_arg, w.here_arg) END),
      (12, 'slot_unreserved', h.kind = 'slot' AND h.wal_status = 'unreserved',
       format('slot %I for node %s retains %s, wal_status unreserved: the next checkpoint may remove WAL node %s still needs',
              h.name, w.peer, pg_size_pretty(h.retained_bytes), w.peer)),
      (13, 'slot_safe_wal', h.kind = 'slot' AND h.wal_status NOT IN ('lost', 'unreserved') AND f.slot_safe_wal,
       format('slot %I for node %s can retain only %s more WAL (%s) before max_slot_wal_keep_size removes WAL node %s needs: '
              'let node %s catch up, or raise max_slot_wal_keep_size',
              h.name, w.peer, pg_size_pretty(greatest(h.safe_wal_size, 0)),
              CASE WHEN h.safe_wal_size < s.slot_safe_wal_bytes THEN format('less than %s', pg_size_pretty(s.slot_safe_wal_bytes))
                   ELSE format('was less than %s; healthy again above %s', pg_size_pretty(s.slot_safe_wal_bytes),
                               pg_size_pretty((1.1 * s.slot_safe_wal_bytes)::bigint)) END,
              w.peer, w.peer)),
      (14, 'slot_retained', h.kind = 'slot' AND f.slot_retained,
       format('slot %I %s node %s retains %s of WAL (%s): %s',
              h.name, CASE WHEN h.prepared THEN 'prepared for' ELSE 'for' END, w.peer, pg_size_pretty(h.retained_bytes),
              CASE WHEN h.retained_bytes > s.slot_retained_bytes THEN format('more than %s', pg_size_pretty(s.slot_retained_bytes))
                   ELSE format('was more than %s; healthy again below %s', pg_size_pretty(s.slot_retained_bytes),
                               pg_size_pretty((0.9 * s.slot_retained_bytes)::bigint)) END,
              -- a prepared slot waits for an init: start it, or drop the slot
              CASE WHEN NOT coalesce(h.prepared, false) THEN format('node %s lags or is away', w.peer)
                   WHEN w.prepared_for = 'manual'
                     THEN format('complete the manual init of node %s (steep-repl node complete %s) or cancel it (steep-repl node cancel %s); '
                                 'the slot expires at %s', w.peer, w.peer_arg, w.peer_arg, w.expires)
                   WHEN w.prepared_for = 'two-phase'
                     THEN format('finish the snapshot init of node %s (steep-repl node status %s) or cancel it (steep-repl node cancel %s); '
                                 'the slot expires at %s', w.peer, w.peer_arg, w.peer_arg, w.expires)
                   ELSE format('start the init of node %s from node %s (steep-repl node start %s --from %s), or drop it before it expires at %s: '
                               'SELECT pg_drop_replication_slot(%L); DELETE FROM steep_repl.init_slots WHERE slot_name = %L',
                               w.peer, w.here, w.peer_arg, w.here_arg, coalesce(w.expires, '?'), h.name, h.name) END)),
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
