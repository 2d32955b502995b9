--! Previous: sha1:ec718f9f70f1960eb66f5b352ebb76c5183dfc98
--! Hash: sha1:82a3747932e543f17fd4a70f0563999f30800946
--! Message: snapshot init

-- Snapshot initialization (SPEC §4.2, §4.7): start_init / cancel_init /
-- init_status for psql and the CLI, and the functions the init_snapshot task
-- reports through. Every decision (may this init start? what is the overall
-- percentage? which event does a table change emit?) is made here.

-- Why the last init failed, so clients can choose an exit code without
-- parsing the message: schema_mismatch (3), timeout (5), connection (6), error (1).
ALTER TABLE steep_repl.init_progress
  ADD COLUMN failure_kind text CHECK (failure_kind IN ('schema_mismatch', 'timeout', 'connection', 'error')),
  ADD COLUMN lsn_target pg_lsn,
  ADD COLUMN subscription_name text;

COMMENT ON COLUMN steep_repl.init_progress.lsn_target IS
  'source WAL position taken when every table was ready; synchronized once the subscription confirmed it';
COMMENT ON COLUMN steep_repl.init_progress.subscription_name IS
  'name of the subscription on the target, of the publication and of the slot on the source';

-- Publication, subscription and slot of one source → target pair share a
-- name that is a valid slot name ([a-z0-9_], at most 63 bytes) for any pair
-- of node ids: a readable prefix plus a hash that keeps distinct pairs apart.
CREATE FUNCTION steep_repl.replication_name(p_source text, p_target text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT 'steep_' || left(trim(both '_' from regexp_replace(lower(p_source), '[^a-z0-9]+', '_', 'g')), 16)
      || '_to_' || left(trim(both '_' from regexp_replace(lower(p_target), '[^a-z0-9]+', '_', 'g')), 16)
      || '_' || left(md5(jsonb_build_array(p_source, p_target)::text), 10)
$$;

-- Options of start_init, checked and completed with their defaults. Unknown
-- keys are refused so a typo never silently falls back to a default.
CREATE FUNCTION steep_repl.init_options(p_options jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  v_opts jsonb := coalesce(p_options, '{}');
  v_known text[] := ARRAY['parallel', 'schema_sync', 'force', 'timeout', 'resume', 'lag_threshold_bytes'];
  v_key text;
  v_parallel int;
  v_timeout numeric;
  v_lag bigint;
BEGIN
  IF jsonb_typeof(v_opts) <> 'object' THEN
    RAISE EXCEPTION 'init options must be a JSON object, got %', jsonb_typeof(v_opts) USING ERRCODE = 'SR004';
  END IF;
  FOR v_key IN SELECT jsonb_object_keys(v_opts) LOOP
    IF NOT v_key = ANY (v_known) THEN
      RAISE EXCEPTION 'unknown init option %', quote_literal(v_key)
        USING ERRCODE = 'SR004', HINT = 'options: ' || array_to_string(v_known, ', ');
    END IF;
  END LOOP;

  IF v_opts ? 'parallel' AND jsonb_typeof(v_opts -> 'parallel') <> 'null' THEN
    IF jsonb_typeof(v_opts -> 'parallel') <> 'number' OR (v_opts ->> 'parallel') !~ '^\d+$'
       OR (v_opts ->> 'parallel')::numeric NOT BETWEEN 1 AND 16 THEN
      RAISE EXCEPTION 'option parallel must be a whole number from 1 to 16, got %', v_opts -> 'parallel'
        USING ERRCODE = 'SR004';
    END IF;
    v_parallel := (v_opts ->> 'parallel')::int;
  END IF;

  IF coalesce(v_opts ->> 'schema_sync', 'strict') NOT IN ('strict', 'auto', 'manual')
     OR (v_opts ? 'schema_sync' AND jsonb_typeof(v_opts -> 'schema_sync') <> 'string') THEN
    RAISE EXCEPTION 'option schema_sync must be strict, auto or manual, got %', v_opts -> 'schema_sync'
      USING ERRCODE = 'SR004';
  END IF;

  FOREACH v_key IN ARRAY ARRAY['force', 'resume'] LOOP
    IF v_opts ? v_key AND jsonb_typeof(v_opts -> v_key) <> 'boolean' THEN
      RAISE EXCEPTION 'option % must be true or false, got %', v_key, v_opts -> v_key USING ERRCODE = 'SR004';
    END IF;
  END LOOP;

  -- timeout: seconds, or an interval text such as '2 hours'.
  IF v_opts ? 'timeout' AND jsonb_typeof(v_opts -> 'timeout') <> 'null' THEN
    BEGIN
      v_timeout := CASE jsonb_typeof(v_opts -> 'timeout')
                     WHEN 'number' THEN (v_opts ->> 'timeout')::numeric
                     WHEN 'string' THEN CASE WHEN (v_opts ->> 'timeout') ~ '^\s*\d+(\.\d+)?\s*$'
                                             THEN (v_opts ->> 'timeout')::numeric
                                             ELSE extract(epoch FROM (v_opts ->> 'timeout')::interval) END
                   END;
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR invalid_text_representation THEN
      v_timeout := NULL;
    END;
    IF v_timeout IS NULL OR v_timeout <= 0 THEN
      RAISE EXCEPTION 'option timeout must be a positive number of seconds or an interval such as ''2 hours'', got %',
        v_opts -> 'timeout' USING ERRCODE = 'SR004';
    END IF;
  END IF;

  IF v_opts ? 'lag_threshold_bytes' THEN
    IF jsonb_typeof(v_opts -> 'lag_threshold_bytes') <> 'number' OR (v_opts ->> 'lag_threshold_bytes') !~ '^\d+$' THEN
      RAISE EXCEPTION 'option lag_threshold_bytes must be a whole number of bytes, got %', v_opts -> 'lag_threshold_bytes'
        USING ERRCODE = 'SR004';
    END IF;
    v_lag := (v_opts ->> 'lag_threshold_bytes')::bigint;
  END IF;

  RETURN jsonb_build_object(
    'parallel', v_parallel,
    'schema_sync', coalesce(v_opts ->> 'schema_sync', 'strict'),
    'force', coalesce((v_opts ->> 'force')::boolean, false),
    'timeout_seconds', ceil(v_timeout)::int,
    'resume', coalesce((v_opts ->> 'resume')::boolean, false),
    'lag_threshold_bytes', coalesce(v_lag, 1048576));
END $$;

-- The init job of a node, queued or running, if any. PL/pgSQL so that the
-- extension script can create it before graphile-worker's schema exists.
CREATE FUNCTION steep_repl.init_job(p_node_id text)
RETURNS TABLE (job_id bigint, locked_at timestamptz, attempts smallint, run_at timestamptz, last_error text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF to_regclass('graphile_worker._private_jobs') IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY SELECT j.id, j.locked_at, j.attempts, j.run_at, j.last_error
               FROM graphile_worker._private_jobs j WHERE j.key = 'init:' || p_node_id;
END $$;

CREATE FUNCTION steep_repl.start_init(p_target text, p_source text, p_method text DEFAULT 'snapshot', p_options jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_target steep_repl.nodes := steep_repl.get_node(p_target);
  v_source steep_repl.nodes := steep_repl.get_node(p_source);
  v_local text := steep_repl.local_node_id();
  v_opts jsonb := steep_repl.init_options(p_options);
  v_resume boolean := (v_opts ->> 'resume')::boolean;
  v_job bigint;
  v_name text := steep_repl.replication_name(p_source, p_target);
BEGIN
  IF v_local IS DISTINCT FROM p_target THEN
    RAISE EXCEPTION 'start_init runs on the database of the target node %; this database is %', quote_ident(p_target),
      coalesce('node ' || quote_ident(v_local), 'not registered as a local node')
      USING ERRCODE = 'SR004',
            HINT = format('connect to %s:%s/%s and run it there (steep-repl node start finds it from the registry)',
                          v_target.host, v_target.port, v_target.dbname);
  END IF;
  IF p_source = p_target THEN
    RAISE EXCEPTION 'node % cannot be initialized from itself', quote_ident(p_target) USING ERRCODE = 'SR004';
  END IF;
  IF p_method IS DISTINCT FROM 'snapshot' THEN
    RAISE EXCEPTION 'init method % is not available', quote_nullable(p_method)
      USING ERRCODE = 'SR004', HINT = 'methods: snapshot';
  END IF;

  -- Serializes concurrent start/cancel calls for this node.
  SELECT * INTO v_target FROM steep_repl.nodes WHERE node_id = p_target FOR UPDATE;

  IF EXISTS (SELECT 1 FROM steep_repl.init_job(p_target)) THEN
    RAISE EXCEPTION 'an initialization of node % is already queued or running', quote_ident(p_target)
      USING ERRCODE = 'SR006', HINT = 'follow it with steep-repl node progress, or stop it with steep-repl node cancel';
  END IF;
  IF (SELECT in_progress FROM steep_repl.init_states WHERE state = v_target.init_state) THEN
    RAISE EXCEPTION 'node % is already %', quote_ident(p_target), v_target.init_state
      USING ERRCODE = 'SR006', HINT = 'follow it with steep-repl node progress, or stop it with steep-repl node cancel';
  END IF;
  IF v_resume AND v_target.init_state <> 'failed' THEN
    RAISE EXCEPTION 'node % is %: only a failed initialization can be resumed', quote_ident(p_target), v_target.init_state
      USING ERRCODE = 'SR004';
  END IF;
  IF v_resume AND v_target.init_source_node IS DISTINCT FROM p_source THEN
    RAISE EXCEPTION 'the failed initialization of node % copied from %, not %', quote_ident(p_target),
      quote_ident(v_target.init_source_node), quote_ident(p_source)
      USING ERRCODE = 'SR004', HINT = 'resume it from its own source, or cancel it and start again';
  END IF;
  IF v_target.init_state = 'failed' AND NOT v_resume THEN
    RAISE EXCEPTION 'the last initialization of node % failed', quote_ident(p_target)
      USING ERRCODE = 'SR003',
            HINT = format('resume it: steep-repl node start %s --from %s --resume, or SELECT steep_repl.start_init(%L, %L, ''snapshot'', ''{"resume": true}''); or clean it up first: steep-repl node cancel %s',
                          p_target, v_target.init_source_node, p_target, v_target.init_source_node, p_target);
  END IF;

  UPDATE steep_repl.nodes SET init_source_node = p_source WHERE node_id = p_target;
  PERFORM steep_repl.transition(p_target, 'preparing', jsonb_build_object(
    'reason', CASE WHEN v_resume THEN 'init resumed' ELSE 'init started' END,
    'source_node', p_source, 'method', p_method));

  IF v_resume THEN
    UPDATE steep_repl.init_progress
       SET phase = 'preparing', error = NULL, failure_kind = NULL, cancel_requested_at = NULL,
           options = options || (v_opts - 'resume'), updated_at = now()
     WHERE node_id = p_target;
  ELSE
    DELETE FROM steep_repl.init_table_progress WHERE node_id = p_target;
    DELETE FROM steep_repl.init_progress WHERE node_id = p_target;
  END IF;
  INSERT INTO steep_repl.init_progress (node_id, source_node_id, method, phase, options, workers_max, subscription_name)
  VALUES (p_target, p_source, p_method, 'preparing', v_opts, (v_opts ->> 'parallel')::int, v_name)
  ON CONFLICT (node_id) DO NOTHING;

  v_job := steep_repl.enqueue('init_snapshot', jsonb_build_object('node_id', p_target, 'source_node_id', p_source),
                              'init:' || p_target, 25);
  UPDATE steep_repl.init_progress SET job_id = v_job WHERE node_id = p_target;

  PERFORM steep_repl.emit_event('init.started', p_target, jsonb_build_object(
    'source_node', p_source, 'method', p_method, 'options', v_opts, 'job_id', v_job, 'resume', v_resume));

  RETURN jsonb_build_object(
    'node_id', p_target,
    'source_node_id', p_source,
    'method', p_method,
    'state', 'preparing',
    'job_id', v_job,
    'options', v_opts,
    'replication_name', v_name,
    'follow', jsonb_build_object(
      'status', format('SELECT steep_repl.init_status(%L)', p_target),
      'channels', jsonb_build_array('steep_repl_progress', 'steep_repl_state', 'steep_repl_events'),
      'cancel', format('SELECT steep_repl.cancel_init(%L)', p_target)));
END $$;

-- The init's whole picture in one value: node state, progress row, tables
-- and the job. Clients poll it after a reconnect; notifications carry the
-- changes in between.
CREATE FUNCTION steep_repl.init_status(p_node_id text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_node steep_repl.nodes := steep_repl.get_node(p_node_id);
BEGIN
  RETURN jsonb_build_object(
    'node_id', v_node.node_id,
    'state', v_node.init_state,
    'in_progress', (SELECT in_progress FROM steep_repl.init_states WHERE state = v_node.init_state),
    'source_node_id', v_node.init_source_node,
    'started_at', v_node.init_started_at,
    'completed_at', v_node.init_completed_at,
    'progress', (SELECT to_jsonb(p) FROM steep_repl.init_progress p WHERE p.node_id = p_node_id),
    'tables', coalesce((SELECT jsonb_agg(to_jsonb(t) - 'node_id' ORDER BY t.schema_name, t.table_name)
                        FROM steep_repl.init_table_progress t WHERE t.node_id = p_node_id), '[]'),
    'job', (SELECT to_jsonb(j) FROM steep_repl.init_job(p_node_id) j));
END $$;

-- Ends an init from any in-progress or failed state in the way the outcome
-- asks, with its transition, progress row and event in one transaction.
CREATE FUNCTION steep_repl.finish_init(p_node_id text, p_outcome text, p_details jsonb DEFAULT '{}')
RETURNS steep_repl.nodes LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes := steep_repl.get_node(p_node_id);
  v_details jsonb := coalesce(p_details, '{}');
BEGIN
  CASE p_outcome
  WHEN 'completed' THEN
    v_node := steep_repl.transition(p_node_id, 'synchronized', jsonb_build_object('reason', 'caught up with the source'));
    UPDATE steep_repl.init_progress
       SET phase = 'done', overall_percent = 100, tables_done = tables_total, eta_seconds = 0,
           workers_active = 0, error = NULL, failure_kind = NULL, updated_at = now()
     WHERE node_id = p_node_id;
    PERFORM steep_repl.emit_event('init.completed', p_node_id, v_details || jsonb_build_object(
      'source_node', v_node.init_source_node,
      'seconds', round(extract(epoch FROM now() - v_node.init_started_at)::numeric, 3)));
  WHEN 'failed' THEN
    v_node := steep_repl.transition(p_node_id, 'failed', jsonb_build_object('reason', v_details ->> 'error'));
    UPDATE steep_repl.init_progress
       SET phase = 'failed', error = v_details ->> 'error', failure_kind = coalesce(v_details ->> 'kind', 'error'),
           workers_active = 0, rows_per_second = NULL, bytes_per_second = NULL, eta_seconds = NULL, updated_at = now()
     WHERE node_id = p_node_id;
    PERFORM steep_repl.emit_event('init.failed', p_node_id, v_details);
  WHEN 'cancelled' THEN
    IF v_node.init_state <> 'uninitialized' THEN
      v_node := steep_repl.transition(p_node_id, 'uninitialized', jsonb_build_object('reason', 'init cancelled'));
    END IF;
    UPDATE steep_repl.nodes SET init_source_node = NULL WHERE node_id = p_node_id RETURNING * INTO v_node;
    DELETE FROM steep_repl.init_table_progress WHERE node_id = p_node_id;
    DELETE FROM steep_repl.init_progress WHERE node_id = p_node_id;
    PERFORM steep_repl.emit_event('init.cancelled', p_node_id, v_details);
  ELSE
    RAISE EXCEPTION 'unknown init outcome %', quote_nullable(p_outcome)
      USING ERRCODE = 'SR004', HINT = 'outcomes: completed, failed, cancelled';
  END CASE;
  RETURN v_node;
END $$;

-- Cancel returns at once. A job that never started is removed here; a
-- running one is told over steep_repl_cancel; anything else (a failed init,
-- a job waiting for its agent to come back) gets a job that cleans up,
-- because only the agent can reach the source to drop what it created there.
CREATE FUNCTION steep_repl.cancel_init(p_node_id text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes := steep_repl.get_node(p_node_id);
  v_job record;
  v_job_id bigint;
BEGIN
  SELECT * INTO v_node FROM steep_repl.nodes WHERE node_id = p_node_id FOR UPDATE;
  IF NOT (v_node.init_state IN ('failed') OR (SELECT in_progress FROM steep_repl.init_states WHERE state = v_node.init_state))
     OR NOT EXISTS (SELECT 1 FROM steep_repl.init_progress WHERE node_id = p_node_id) THEN
    RAISE EXCEPTION 'node % is %: there is no initialization to cancel', quote_ident(p_node_id), v_node.init_state
      USING ERRCODE = 'SR003';
  END IF;
  SELECT * INTO v_job FROM steep_repl.init_job(p_node_id);

  IF v_job.job_id IS NOT NULL AND v_job.locked_at IS NULL AND v_job.attempts = 0 AND v_node.init_state = 'preparing' THEN
    PERFORM graphile_worker.remove_job('init:' || p_node_id);
    PERFORM steep_repl.finish_init(p_node_id, 'cancelled', jsonb_build_object('reason', 'cancelled before the job started'));
    RETURN jsonb_build_object('node_id', p_node_id, 'cancelled', true, 'state', 'uninitialized');
  END IF;

  UPDATE steep_repl.init_progress SET cancel_requested_at = coalesce(cancel_requested_at, now()), phase = 'cancelling',
         updated_at = now()
   WHERE node_id = p_node_id;
  IF v_job.job_id IS NOT NULL AND v_job.locked_at IS NOT NULL THEN
    v_job_id := v_job.job_id;
    PERFORM steep_repl.request_job_cancel(p_node_id, v_job_id);
  ELSE
    v_job_id := steep_repl.enqueue('init_snapshot',
      jsonb_build_object('node_id', p_node_id, 'source_node_id', v_node.init_source_node), 'init:' || p_node_id, 25);
  END IF;
  PERFORM steep_repl.emit_event('init.cancel_requested', p_node_id, jsonb_build_object('job_id', v_job_id));
  RETURN jsonb_build_object('node_id', p_node_id, 'cancelled', false, 'cancel_requested', true,
                            'job_id', v_job_id, 'state', v_node.init_state);
END $$;

-- Moves an init to its next phase: phase_completed for the one it leaves,
-- phase_started for the new one. A repeated call (a resumed job) is a no-op.
CREATE FUNCTION steep_repl.init_phase(p_node_id text, p_phase text, p_details jsonb DEFAULT '{}')
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_old text;
BEGIN
  SELECT phase INTO v_old FROM steep_repl.init_progress WHERE node_id = p_node_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'node % has no initialization in progress', quote_ident(p_node_id) USING ERRCODE = 'SR003';
  END IF;
  IF v_old = p_phase THEN
    RETURN;
  END IF;
  UPDATE steep_repl.init_progress SET phase = p_phase, updated_at = now() WHERE node_id = p_node_id;
  PERFORM steep_repl.emit_event('init.phase_completed', p_node_id, jsonb_build_object('phase', v_old));
  PERFORM steep_repl.emit_event('init.phase_started', p_node_id, coalesce(p_details, '{}') || jsonb_build_object('phase', p_phase));
END $$;

-- The agent reports what it measured; this function turns it into progress.
-- p_tables: [{schema_name, table_name, state, rows_total, bytes_total,
-- rows_copied}] with state pending|copying|copied|done. p_stats: rates, ETA,
-- workers, lag. Percentages never go backwards; overall % is weighted by the
-- bytes each table holds on the source.
CREATE FUNCTION steep_repl.report_init_progress(p_node_id text, p_tables jsonb, p_stats jsonb DEFAULT '{}')
RETURNS steep_repl.init_progress LANGUAGE plpgsql AS $$
DECLARE
  v_progress steep_repl.init_progress;
BEGIN
  INSERT INTO steep_repl.init_table_progress AS p
    (node_id, schema_name, table_name, state, rows_total, bytes_total, rows_copied, started_at, completed_at)
  SELECT p_node_id, r.schema_name, r.table_name, r.state, r.rows_total, r.bytes_total, greatest(coalesce(r.rows_copied, 0), 0),
         CASE WHEN r.state <> 'pending' THEN clock_timestamp() END,
         CASE WHEN r.state = 'done' THEN clock_timestamp() END
  FROM jsonb_to_recordset(coalesce(p_tables, '[]'))
       AS r(schema_name text, table_name text, state text, rows_total bigint, bytes_total bigint, rows_copied bigint)
  ON CONFLICT (node_id, schema_name, table_name) DO UPDATE SET
    state = CASE WHEN p.state = 'done' THEN 'done' ELSE excluded.state END,
    rows_total = coalesce(excluded.rows_total, p.rows_total),
    bytes_total = coalesce(excluded.bytes_total, p.bytes_total),
    rows_copied = greatest(p.rows_copied, excluded.rows_copied),
    started_at = coalesce(p.started_at, excluded.started_at),
    completed_at = coalesce(p.completed_at, excluded.completed_at);

  -- Percent per table: done tables 100, copying tables by rows against the
  -- source's count (held below 100 until the table is ready); never lower.
  UPDATE steep_repl.init_table_progress t SET
    percent = greatest(t.percent, CASE
      WHEN t.state IN ('done', 'copied') THEN 100
      WHEN t.state = 'copying' AND coalesce(t.rows_total, 0) > 0 THEN least(99.99, round(100.0 * t.rows_copied / t.rows_total, 2))
      ELSE 0 END),
    rows_copied = CASE WHEN t.state IN ('done', 'copied') THEN greatest(t.rows_copied, coalesce(t.rows_total, 0)) ELSE t.rows_copied END
  WHERE t.node_id = p_node_id;
  UPDATE steep_repl.init_table_progress t SET
    bytes_copied = greatest(t.bytes_copied, round(coalesce(t.bytes_total, 0) * t.percent / 100)::bigint),
    rows_per_second = CASE WHEN t.state IN ('done', 'copied') AND t.completed_at > t.started_at
                           THEN round(t.rows_copied / extract(epoch FROM t.completed_at - t.started_at)::numeric, 1)
                           ELSE t.rows_per_second END
  WHERE t.node_id = p_node_id;

  UPDATE steep_repl.init_progress p SET
    tables_total = s.tables_total,
    tables_done = s.tables_done,
    rows_total = s.rows_total,
    rows_copied = s.rows_copied,
    bytes_total = s.bytes_total,
    bytes_copied = s.bytes_copied,
    overall_percent = greatest(p.overall_percent, CASE
      WHEN s.tables_total = 0 THEN 0
      WHEN s.bytes_total > 0 THEN least(100, round(100.0 * s.weighted / s.bytes_total, 2))
      ELSE round(100.0 * s.tables_done / s.tables_total, 2) END),
    current_table = s.current_table,
    current_table_percent = s.current_percent,
    rows_per_second = coalesce((p_stats ->> 'rows_per_second')::numeric, p.rows_per_second),
    bytes_per_second = coalesce((p_stats ->> 'bytes_per_second')::numeric, p.bytes_per_second),
    eta_seconds = CASE WHEN p_stats ? 'eta_seconds' THEN (p_stats ->> 'eta_seconds')::int ELSE p.eta_seconds END,
    workers_active = coalesce((p_stats ->> 'workers_active')::int, p.workers_active),
    workers_max = coalesce((p_stats ->> 'workers_max')::int, p.workers_max),
    lag_bytes = CASE WHEN p_stats ? 'lag_bytes' THEN (p_stats ->> 'lag_bytes')::bigint ELSE p.lag_bytes END,
    updated_at = clock_timestamp()
  FROM (
    SELECT count(*)::int AS tables_total,
           count(*) FILTER (WHERE t.state = 'done')::int AS tables_done,
           sum(coalesce(t.rows_total, 0))::bigint AS rows_total,
           sum(t.rows_copied)::bigint AS rows_copied,
           sum(coalesce(t.bytes_total, 0))::bigint AS bytes_total,
           sum(t.bytes_copied)::bigint AS bytes_copied,
           sum(coalesce(t.bytes_total, 0) * t.percent / 100) AS weighted,
           (SELECT format('%I.%I', c.schema_name, c.table_name) FROM steep_repl.init_table_progress c
             WHERE c.node_id = p_node_id AND c.state = 'copying' ORDER BY c.bytes_total DESC NULLS LAST LIMIT 1) AS current_table,
           (SELECT c.percent FROM steep_repl.init_table_progress c
             WHERE c.node_id = p_node_id AND c.state = 'copying' ORDER BY c.bytes_total DESC NULLS LAST LIMIT 1) AS current_percent
    FROM steep_repl.init_table_progress t WHERE t.node_id = p_node_id
  ) s
  WHERE p.node_id = p_node_id
  RETURNING p.* INTO v_progress;
  RETURN v_progress;
END $$;

-- Table events are decided here from the state each report moves a table
-- to, so a resumed job never announces a table twice.
CREATE FUNCTION steep_repl.announce_table_progress() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.state IN ('copying', 'copied', 'done') AND (TG_OP = 'INSERT' OR OLD.state = 'pending') THEN
    PERFORM steep_repl.emit_event('init.table_started', NEW.node_id, jsonb_build_object(
      'schema', NEW.schema_name, 'table', NEW.table_name, 'rows_total', NEW.rows_total, 'bytes_total', NEW.bytes_total));
  END IF;
  IF NEW.state = 'done' AND (TG_OP = 'INSERT' OR OLD.state <> 'done') THEN
    PERFORM steep_repl.emit_event('init.table_complete', NEW.node_id, jsonb_build_object(
      'schema', NEW.schema_name, 'table', NEW.table_name, 'rows', greatest(NEW.rows_copied, coalesce(NEW.rows_total, 0)),
      'bytes', NEW.bytes_total,
      'seconds', round(extract(epoch FROM NEW.completed_at - NEW.started_at)::numeric, 3)));
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER init_table_progress_announce
  AFTER INSERT OR UPDATE OF state ON steep_repl.init_table_progress
  FOR EACH ROW EXECUTE FUNCTION steep_repl.announce_table_progress();
