-- One observation round of this node's replication, called by its agent
-- every health_settings.watch_interval_seconds, in one transaction: the
-- facts of every steep-repl subscription (this node is its target) and slot
-- (this node is its source) are recorded in replication_health, one sample
-- each in replication_health_history (trimmed to history_seconds), each
-- row's problems and reason decided (replication_problems), an event
-- emitted when an object's problem set changes (never per round), and the
-- local node's status set. Rows of objects gone are removed.
--
-- p_sources: what the agent read on each subscription's source, keyed by
-- subscription name: {"current_lsn": "0/16B3748" (its WAL flush position),
-- "confirmed_flush_lsn": "0/16B3700" | null, "slot_active": true | false |
-- null, "slot_exists": true | false | null (optional; false: the source has
-- no slot of that name, and nothing is confirmed)}, or {"error": "text"}
-- when the source could not be asked. A subscription without a key
-- was not asked: no lag, no source problem. Keys of no subscription here
-- (one dropped since the agent listed it) are ignored. Anything else is
-- refused (SR004) and nothing is recorded.
--
-- Cheap by design: a handful of index lookups per object; no temporary
-- tables (catalog churn every few seconds).
CREATE OR REPLACE FUNCTION steep_repl.observe_replication(p_sources jsonb DEFAULT '{}')
RETURNS SETOF steep_repl.replication_health
LANGUAGE plpgsql AS $$
DECLARE
  v_local text := steep_repl.local_node_id();
  v_now timestamptz := now();
  v_set steep_repl.health_settings;
  v_quiet interval;
  v_window timestamptz;
  v_facts jsonb;
  v_status text;
  v_key text;
  v_value jsonb;
  v_bad text;
  v_lsn constant text := '^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$';
  v_example constant text := '{"<subscription>": {"current_lsn": "0/16B3748", "confirmed_flush_lsn": "0/16B3700", "slot_active": true, "slot_exists": true}}'
                             ' or {"<subscription>": {"error": "why the source could not be asked"}}';
  r record;
BEGIN
  IF v_local IS NULL THEN
    RAISE EXCEPTION 'observe_replication runs on the database of a node: this database is not registered as a local node'
      USING ERRCODE = 'SR004',
            HINT = 'register it with steep-repl node register <id> --local --db <url>, then start steep-repl agent on it';
  END IF;

  -- The input first: a refusal records nothing.
  p_sources := coalesce(p_sources, '{}');
  IF jsonb_typeof(p_sources) <> 'object' THEN
    RAISE EXCEPTION 'observe_replication takes a JSON object keyed by subscription name, not a JSON %', jsonb_typeof(p_sources)
      USING ERRCODE = 'SR004', HINT = 'e.g. ' || v_example;
  END IF;
  FOR v_key, v_value IN SELECT e.key, e.value FROM jsonb_each(p_sources) e LOOP
    v_bad := CASE
      WHEN jsonb_typeof(v_value) <> 'object' THEN format('a JSON %s instead of an object', jsonb_typeof(v_value))
      WHEN v_value ? 'error' THEN
        CASE WHEN jsonb_typeof(v_value -> 'error') <> 'string' THEN 'an error that is no string'
             WHEN EXISTS (SELECT 1 FROM jsonb_object_keys(v_value) k WHERE k <> 'error')
               THEN format('key(s) %s beside error', (SELECT string_agg(quote_ident(k), ', ' ORDER BY k) FROM jsonb_object_keys(v_value) k WHERE k <> 'error'))
        END
      WHEN EXISTS (SELECT 1 FROM jsonb_object_keys(v_value) k WHERE k NOT IN ('current_lsn', 'confirmed_flush_lsn', 'slot_active', 'slot_exists'))
        THEN format('unknown key(s) %s', (SELECT string_agg(quote_ident(k), ', ' ORDER BY k) FROM jsonb_object_keys(v_value) k
                                            WHERE k NOT IN ('current_lsn', 'confirmed_flush_lsn', 'slot_active', 'slot_exists')))
      WHEN jsonb_typeof(v_value -> 'current_lsn') IS DISTINCT FROM 'string' OR v_value ->> 'current_lsn' !~ v_lsn
        THEN format('current_lsn %s, not an LSN such as 0/16B3748', coalesce(v_value ->> 'current_lsn', 'missing'))
      WHEN coalesce(jsonb_typeof(v_value -> 'confirmed_flush_lsn'), 'null') NOT IN ('null', 'string')
           OR v_value ->> 'confirmed_flush_lsn' !~ v_lsn
        THEN format('confirmed_flush_lsn %s, not an LSN or null', v_value ->> 'confirmed_flush_lsn')
      WHEN coalesce(jsonb_typeof(v_value -> 'slot_active'), 'null') NOT IN ('null', 'boolean')
        THEN format('slot_active %s, not true, false or null', v_value ->> 'slot_active')
      WHEN coalesce(jsonb_typeof(v_value -> 'slot_exists'), 'null') NOT IN ('null', 'boolean')
        THEN format('slot_exists %s, not true, false or null', v_value ->> 'slot_exists')
      -- no slot: nothing can be confirmed or active
      WHEN v_value -> 'slot_exists' = 'false' AND (v_value ->> 'confirmed_flush_lsn' IS NOT NULL OR v_value -> 'slot_active' = 'true')
        THEN 'inconsistent: slot_exists false beside a confirmed_flush_lsn or slot_active true'
    END;
    IF v_bad IS NOT NULL THEN
      RAISE EXCEPTION 'observe_replication: the source facts of subscription % are %', quote_ident(v_key), v_bad
        USING ERRCODE = 'SR004', HINT = 'each value is ' || v_example;
    END IF;
  END LOOP;

  -- Two rounds at once (two agents on one database) would race on the rows.
  PERFORM pg_advisory_xact_lock(hashtext('steep_repl.observe_replication'));

  SELECT * INTO v_set FROM steep_repl.health_settings;
  IF NOT FOUND THEN
    -- only if someone removed the row behind the trigger's back
    INSERT INTO steep_repl.health_settings DEFAULT VALUES RETURNING * INTO v_set;
  END IF;
  -- A worker failing in a loop errs at least once per retry interval.
  v_quiet := 2 * current_setting('wal_retrieve_retry_interval')::interval + make_interval(secs => v_set.watch_interval_seconds::float8);
  v_window := v_now - make_interval(secs => v_set.error_window_seconds);

  -- The facts, read once: as replication_health rows (JSON) with what
  -- follows from the previous observation decided below.
  SELECT coalesce(jsonb_agg(x.f), '[]') INTO v_facts
  FROM (
    SELECT jsonb_build_object(
             'kind', 'subscription', 'name', sf.name, 'peer_node_id', sf.peer_node_id,
             'subscription_oid', sf.subscription_oid, 'enabled', sf.enabled, 'slot_name', sf.slot_name,
             'worker_pid', sf.worker_pid, 'received_lsn', sf.received_lsn, 'latest_end_lsn', sf.latest_end_lsn,
             'last_msg_receipt_time', sf.last_msg_receipt_time,
             'apply_error_count', sf.apply_error_count, 'sync_error_count', sf.sync_error_count, 'conflicts', sf.conflicts,
             'source_lsn', src.v ->> 'current_lsn', 'source_confirmed_lsn', src.v ->> 'confirmed_flush_lsn',
             'source_slot_active', src.v -> 'slot_active', 'source_slot_exists', src.v -> 'slot_exists',
             'tables_syncing', sf.tables_syncing,
             -- the agent redacts; this keeps a conninfo's password out all the same
             'source_error', left(regexp_replace(regexp_replace(src.v ->> 'error',
                                  '(password\s*=\s*)(''[^'']*''|\S+)', '\1***', 'gi'), '(://[^:/@\s]*:)[^@\s]*@', '\1***@', 'g'), 1000),
             'lag_bytes', CASE WHEN src.v ->> 'confirmed_flush_lsn' IS NOT NULL
                               THEN greatest(0, pg_catalog.pg_wal_lsn_diff((src.v ->> 'current_lsn')::pg_lsn,
                                                                           (src.v ->> 'confirmed_flush_lsn')::pg_lsn))::bigint END) AS f
      FROM steep_repl.subscription_facts() sf
      LEFT JOIN LATERAL (SELECT p_sources -> sf.name AS v) src ON true
    UNION ALL
    SELECT jsonb_build_object(
             'kind', 'slot', 'name', sl.name, 'peer_node_id', sl.peer_node_id, 'prepared', sl.prepared,
             'slot_active', sl.slot_active, 'active_pid', sl.active_pid, 'wal_status', sl.wal_status,
             'safe_wal_size', sl.safe_wal_size, 'retained_bytes', sl.retained_bytes,
             'restart_lsn', sl.restart_lsn, 'confirmed_flush_lsn', sl.confirmed_flush_lsn,
             -- PostgreSQL 17 and later know since when; before, since this watch saw it so
             'inactive_seen_since', CASE WHEN NOT sl.slot_active THEN sl.inactive_since END)
      FROM steep_repl.slot_facts() sl
  ) x;

  -- Objects gone (a subscription made again under its name is another
  -- object): their rows and history go; one that was degraded recovers.
  FOR r IN
    DELETE FROM steep_repl.replication_health h
     WHERE NOT EXISTS (SELECT 1 FROM jsonb_populate_recordset(NULL::steep_repl.replication_health, v_facts) f
                        WHERE f.kind = h.kind AND f.name = h.name
                          AND f.subscription_oid IS NOT DISTINCT FROM h.subscription_oid)
    RETURNING h.kind, h.name, h.peer_node_id, h.problems, h.reason
  LOOP
    IF cardinality(r.problems) > 0 THEN
      PERFORM steep_repl.emit_event('replication.recovered', v_local, jsonb_build_object(
        'kind', r.kind, 'name', r.name, 'peer_node_id', r.peer_node_id,
        'previous_problems', to_jsonb(r.problems), 'previous_reason', r.reason, 'removed', true));
    END IF;
  END LOOP;

  -- A new object gets its row; its first observation is the baseline (no
  -- counter rose, nothing missing yet).
  INSERT INTO steep_repl.replication_health (kind, name, node_id, first_observed_at, observed_at)
  SELECT f.kind, f.name, v_local, v_now, v_now
    FROM jsonb_populate_recordset(NULL::steep_repl.replication_health, v_facts) f
  ON CONFLICT (kind, name) DO NOTHING;

  -- Every row takes this round's facts, with what follows from the previous
  -- round (h as it was): since when a worker is missing, a source cannot be
  -- asked or a slot is unused; when an error counter last rose, and where
  -- the source's slot stood then.
  UPDATE steep_repl.replication_health h
     SET node_id = v_local,
         peer_node_id = (SELECT n.node_id FROM steep_repl.nodes n WHERE n.node_id = f.peer_node_id),
         observed_at = v_now,
         subscription_oid = f.subscription_oid, enabled = f.enabled, slot_name = f.slot_name,
         worker_pid = f.worker_pid,
         worker_seen_at = CASE WHEN f.worker_pid IS NOT NULL THEN v_now ELSE h.worker_seen_at END,
         worker_missing_since = CASE WHEN f.enabled AND f.worker_pid IS NULL THEN coalesce(h.worker_missing_since, v_now) END,
         apply_error_count = f.apply_error_count, sync_error_count = f.sync_error_count,
         apply_errors_changed_at = CASE WHEN f.apply_error_count > h.apply_error_count THEN v_now ELSE h.apply_errors_changed_at END,
         apply_errors_lsn = CASE WHEN f.apply_error_count > h.apply_error_count THEN f.source_confirmed_lsn ELSE h.apply_errors_lsn END,
         sync_errors_changed_at = CASE WHEN f.sync_error_count > h.sync_error_count THEN v_now ELSE h.sync_errors_changed_at END,
         tables_syncing = f.tables_syncing, conflicts = f.conflicts,
         received_lsn = f.received_lsn, latest_end_lsn = f.latest_end_lsn, last_msg_receipt_time = f.last_msg_receipt_time,
         source_lsn = f.source_lsn, source_confirmed_lsn = f.source_confirmed_lsn,
         source_slot_active = f.source_slot_active, source_slot_exists = f.source_slot_exists,
         source_error = f.source_error,
         source_error_since = CASE WHEN f.source_error IS NOT NULL THEN coalesce(h.source_error_since, v_now) END,
         lag_bytes = f.lag_bytes,
         slot_active = f.slot_active, active_pid = f.active_pid, wal_status = f.wal_status, safe_wal_size = f.safe_wal_size,
         retained_bytes = f.retained_bytes, restart_lsn = f.restart_lsn, confirmed_flush_lsn = f.confirmed_flush_lsn,
         prepared = f.prepared,
         inactive_seen_since = CASE WHEN f.kind = 'slot' AND NOT f.slot_active THEN coalesce(f.inactive_seen_since, h.inactive_seen_since, v_now) END
    FROM jsonb_populate_recordset(NULL::steep_repl.replication_health, v_facts) f
   WHERE h.kind = f.kind AND h.name = f.name;

  INSERT INTO steep_repl.replication_health_history AS hh
    (kind, name, observed_at, apply_error_count, sync_error_count, conflicts, source_lsn, source_confirmed_lsn, lag_bytes, retained_bytes)
  SELECT h.kind, h.name, v_now, h.apply_error_count, h.sync_error_count, h.conflicts, h.source_lsn, h.source_confirmed_lsn,
         h.lag_bytes, h.retained_bytes
    FROM steep_repl.replication_health h
  ON CONFLICT DO NOTHING;
  DELETE FROM steep_repl.replication_health_history hh WHERE hh.observed_at < v_now - make_interval(secs => v_set.history_seconds);

  -- From the history (this round's sample included): rises within the
  -- error window, lag in time, lag trend; then the decision (o.problems,
  -- the previous round's, for the thresholds' hysteresis), and an event
  -- where the problem set changed. MATERIALIZED: replication_problems is
  -- inlined, and would otherwise build the derived record again for every
  -- field it reads (about 3 times the CPU of a round).
  FOR r IN
    WITH derived AS MATERIALIZED (
      SELECT o.kind, o.name, o.problems AS old_problems, o.reason AS old_reason,
             jsonb_populate_record(o, jsonb_build_object(
               'apply_errors_recent', e.apply_errors_recent, 'sync_errors_recent', e.sync_errors_recent,
               'conflicts_recent', c.conflicts_recent,
               'lag_seconds', CASE WHEN o.lag_bytes <= 0 THEN 0 ELSE round(extract(epoch FROM l.behind)::numeric, 3) END,
               'lag_seconds_at_least', CASE WHEN o.lag_bytes <= 0 THEN false ELSE l.at_least END,
               'lag_trend', CASE WHEN t.lag_bytes IS NULL THEN NULL
                                 WHEN abs(o.lag_bytes - t.lag_bytes) <= greatest(1048576, t.lag_bytes * 0.1) THEN 'steady'
                                 WHEN o.lag_bytes > t.lag_bytes THEN 'growing' ELSE 'shrinking' END)) AS n
        FROM steep_repl.replication_health o
        -- rises are counted from the last sample before the window on
        -- (the window's first rise is against it)
        CROSS JOIN LATERAL (
          SELECT coalesce(max(b.observed_at), v_window) AS since FROM steep_repl.replication_health_history b
           WHERE b.kind = o.kind AND b.name = o.name AND b.observed_at < v_window) ws
        -- error counters: the sum of their rises (a reset counts none)
        LEFT JOIN LATERAL (
          SELECT sum(greatest(0, y.apply_error_count - y.apply_before)) FILTER (WHERE y.observed_at >= v_window)::bigint AS apply_errors_recent,
                 sum(greatest(0, y.sync_error_count - y.sync_before)) FILTER (WHERE y.observed_at >= v_window)::bigint AS sync_errors_recent
            FROM (SELECT s.observed_at, s.apply_error_count, s.sync_error_count,
                         lag(s.apply_error_count) OVER w AS apply_before, lag(s.sync_error_count) OVER w AS sync_before
                    FROM steep_repl.replication_health_history s
                   WHERE s.kind = o.kind AND s.name = o.name AND s.observed_at >= ws.since
                  WINDOW w AS (ORDER BY s.observed_at)) y) e ON o.kind = 'subscription'
        -- conflicts, per type
        LEFT JOIN LATERAL (
          SELECT jsonb_object_agg(z.type, z.rise ORDER BY z.type) AS conflicts_recent
            FROM (SELECT y.type, coalesce(sum(greatest(0, y.n - y.before)) FILTER (WHERE y.observed_at >= v_window), 0)::bigint AS rise
                    FROM (SELECT s.observed_at, k.key AS type, k.value::bigint AS n,
                                 lag(k.value::bigint) OVER (PARTITION BY k.key ORDER BY s.observed_at) AS before
                            FROM steep_repl.replication_health_history s
                            CROSS JOIN LATERAL jsonb_each_text(s.conflicts) k
                           WHERE s.kind = o.kind AND s.name = o.name AND s.conflicts IS NOT NULL AND s.observed_at >= ws.since) y
                   GROUP BY y.type) z) c ON o.conflicts IS NOT NULL
        -- lag in time: how long ago the source was at the position now
        -- confirmed, between the two samples around it (a, b); when even the
        -- oldest sample was past it, that sample's age, a lower bound
        LEFT JOIN LATERAL (
          SELECT v_now - CASE
                   WHEN a.observed_at IS NULL THEN (SELECT min(s.observed_at) FROM steep_repl.replication_health_history s
                                                     WHERE s.kind = o.kind AND s.name = o.name AND s.source_lsn IS NOT NULL)
                   WHEN b.observed_at IS NULL OR b.source_lsn = a.source_lsn THEN a.observed_at
                   ELSE a.observed_at + (b.observed_at - a.observed_at)
                        * (pg_catalog.pg_wal_lsn_diff(o.source_confirmed_lsn, a.source_lsn)
                           / pg_catalog.pg_wal_lsn_diff(b.source_lsn, a.source_lsn))::float8 END AS behind,
                 a.observed_at IS NULL AS at_least
            FROM (SELECT 1) one
            LEFT JOIN LATERAL (SELECT s.observed_at, s.source_lsn FROM steep_repl.replication_health_history s
                                WHERE s.kind = o.kind AND s.name = o.name AND s.source_lsn <= o.source_confirmed_lsn
                                ORDER BY s.observed_at DESC LIMIT 1) a ON true
            LEFT JOIN LATERAL (SELECT s.observed_at, s.source_lsn FROM steep_repl.replication_health_history s
                                WHERE s.kind = o.kind AND s.name = o.name AND s.observed_at > a.observed_at
                                  AND s.source_lsn > o.source_confirmed_lsn
                                ORDER BY s.observed_at LIMIT 1) b ON true) l ON o.lag_bytes > 0
        -- the trend: against the sample closest to a minute ago
        LEFT JOIN LATERAL (
          SELECT q.lag_bytes FROM (
            (SELECT s.observed_at, s.lag_bytes FROM steep_repl.replication_health_history s
              WHERE s.kind = o.kind AND s.name = o.name AND s.lag_bytes IS NOT NULL AND s.observed_at <= v_now - interval '60 seconds'
              ORDER BY s.observed_at DESC LIMIT 1)
            UNION ALL
            (SELECT s.observed_at, s.lag_bytes FROM steep_repl.replication_health_history s
              WHERE s.kind = o.kind AND s.name = o.name AND s.lag_bytes IS NOT NULL
                AND s.observed_at > v_now - interval '60 seconds' AND s.observed_at < v_now
              ORDER BY s.observed_at LIMIT 1)) q
          ORDER BY abs(extract(epoch FROM q.observed_at - (v_now - interval '60 seconds'))) LIMIT 1) t ON o.lag_bytes IS NOT NULL
    )
    UPDATE steep_repl.replication_health h
       SET apply_errors_recent = (d.n).apply_errors_recent, sync_errors_recent = (d.n).sync_errors_recent,
           conflicts_recent = (d.n).conflicts_recent, lag_seconds = (d.n).lag_seconds,
           lag_seconds_at_least = (d.n).lag_seconds_at_least, lag_trend = (d.n).lag_trend,
           problems = p.problems, reason = p.reason,
           status = CASE WHEN cardinality(p.problems) > 0 THEN 'degraded' ELSE 'healthy' END,
           degraded_since = CASE WHEN cardinality(p.problems) > 0 THEN coalesce(h.degraded_since, v_now) END
      FROM derived d
      CROSS JOIN LATERAL steep_repl.replication_problems(d.n, v_set, v_quiet, v_now) p
     WHERE h.kind = d.kind AND h.name = d.name
    RETURNING h.kind, h.name, h.peer_node_id, h.problems, h.reason, d.old_problems, d.old_reason
  LOOP
    IF r.problems IS DISTINCT FROM r.old_problems THEN
      IF cardinality(r.problems) > 0 THEN
        PERFORM steep_repl.emit_event('replication.degraded', v_local, jsonb_build_object(
          'kind', r.kind, 'name', r.name, 'peer_node_id', r.peer_node_id, 'problems', to_jsonb(r.problems), 'reason', r.reason));
      ELSE
        PERFORM steep_repl.emit_event('replication.recovered', v_local, jsonb_build_object(
          'kind', r.kind, 'name', r.name, 'peer_node_id', r.peer_node_id,
          'previous_problems', to_jsonb(r.old_problems), 'previous_reason', r.old_reason));
      END IF;
    END IF;
  END LOOP;

  v_status := CASE WHEN EXISTS (SELECT 1 FROM steep_repl.replication_health h WHERE h.status = 'degraded') THEN 'degraded' ELSE 'healthy' END;
  UPDATE steep_repl.nodes SET status = v_status, replication_observed_at = v_now WHERE is_local;

  RETURN QUERY SELECT * FROM steep_repl.replication_health h ORDER BY h.kind, h.name;
END $$;
