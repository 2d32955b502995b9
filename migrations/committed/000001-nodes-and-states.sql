--! Previous: -
--! Hash: sha1:77ff410771869f8d6f9966e408df1ba0370ecb62
--! Message: nodes and states

-- The steep_repl schema: node registry, the init state machine, progress,
-- audit trail and the catalogs later features fill. Every rule that decides
-- something (may this transition happen?) lives here, so psql, the CLI, the
-- TUI and the agent all get the same answer.

CREATE SCHEMA IF NOT EXISTS steep_repl;

-- Errors raised by steep_repl carry their own SQLSTATEs (class SR) so that
-- clients can map them to exit codes without parsing messages:
--   SR001 unknown node         SR002 duplicate node     SR003 illegal transition
--   SR004 invalid argument     SR005 schema mismatch    SR006 operation in progress

CREATE TABLE steep_repl.init_states (
  state text PRIMARY KEY,
  in_progress boolean NOT NULL,
  description text NOT NULL
);

INSERT INTO steep_repl.init_states (state, in_progress, description) VALUES
  ('uninitialized',  false, 'holds no replicated data and has no subscription'),
  ('preparing',      true,  'validating, syncing schema and creating publication/slot'),
  ('copying',        true,  'copying the baseline from the source'),
  ('catching_up',    true,  'streaming changes made on the source since the copy began'),
  ('synchronized',   false, 'replicating, lag under the threshold'),
  ('diverged',       false, 'verification found data that differs from the source'),
  ('failed',         false, 'initialization stopped on an error; retry or cancel'),
  ('reinitializing', true,  're-copying some or all tables while the rest keep replicating');

CREATE TABLE steep_repl.init_transitions (
  from_state text NOT NULL REFERENCES steep_repl.init_states (state),
  to_state text NOT NULL REFERENCES steep_repl.init_states (state),
  PRIMARY KEY (from_state, to_state),
  CHECK (from_state <> to_state)
);

INSERT INTO steep_repl.init_transitions (from_state, to_state) VALUES
  ('uninitialized',  'preparing'),
  ('preparing',      'copying'),
  ('preparing',      'catching_up'),     -- manual init: the DBA restored the copy
  ('preparing',      'failed'),
  ('preparing',      'uninitialized'),   -- cancel
  ('copying',        'catching_up'),
  ('copying',        'failed'),
  ('copying',        'uninitialized'),   -- cancel
  ('catching_up',    'synchronized'),
  ('catching_up',    'failed'),
  ('catching_up',    'uninitialized'),   -- cancel
  ('synchronized',   'diverged'),
  ('synchronized',   'reinitializing'),
  ('synchronized',   'uninitialized'),   -- node detached from replication
  ('diverged',       'synchronized'),    -- a later verify found no difference
  ('diverged',       'reinitializing'),
  ('diverged',       'uninitialized'),
  ('reinitializing', 'copying'),
  ('reinitializing', 'catching_up'),
  ('reinitializing', 'synchronized'),
  ('reinitializing', 'failed'),
  ('reinitializing', 'uninitialized'),   -- cancel
  ('failed',         'preparing'),       -- retry / resume
  ('failed',         'uninitialized');   -- give up and clean up

CREATE TABLE steep_repl.nodes (
  node_id text PRIMARY KEY
    CHECK (node_id <> '' AND length(node_id) <= 63 AND node_id !~ '[[:cntrl:]]'),
  node_name text NOT NULL,
  host text NOT NULL CHECK (btrim(host) <> ''),
  port integer NOT NULL DEFAULT 5432 CHECK (port BETWEEN 1 AND 65535),
  dbname text NOT NULL CHECK (dbname <> ''),
  user_name text CHECK (user_name <> ''),
  priority integer NOT NULL DEFAULT 50 CHECK (priority BETWEEN 1 AND 100),
  status text NOT NULL DEFAULT 'unknown'
    CHECK (status IN ('unknown', 'healthy', 'degraded', 'unreachable', 'offline')),
  last_seen timestamptz,
  init_state text NOT NULL DEFAULT 'uninitialized' REFERENCES steep_repl.init_states (state),
  init_source_node text REFERENCES steep_repl.nodes (node_id)
    CHECK (init_source_node <> node_id),
  init_started_at timestamptz,
  init_completed_at timestamptz,
  is_local boolean NOT NULL DEFAULT false,
  registered_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE steep_repl.nodes IS
  'Registry of every node of the cluster. No passwords: connections use the libpq environment or pgpass.';
COMMENT ON COLUMN steep_repl.nodes.is_local IS 'true on the row describing the database this registry lives in';

CREATE UNIQUE INDEX nodes_one_local ON steep_repl.nodes (is_local) WHERE is_local;

CREATE TABLE steep_repl.audit_log (
  audit_id bigserial PRIMARY KEY,
  occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor text NOT NULL DEFAULT current_user,
  event text NOT NULL CHECK (event ~ '^[a-z_]+\.[a-z_]+$' AND length(event) <= 63),
  node_id text,
  from_state text,
  to_state text,
  details jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_log_node ON steep_repl.audit_log (node_id, occurred_at);

CREATE TABLE steep_repl.coordinator_state (
  key text PRIMARY KEY,
  value jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE steep_repl.init_progress (
  node_id text PRIMARY KEY REFERENCES steep_repl.nodes (node_id) ON DELETE CASCADE,
  source_node_id text REFERENCES steep_repl.nodes (node_id) ON DELETE SET NULL,
  method text NOT NULL DEFAULT 'snapshot' CHECK (method IN ('snapshot', 'direct', 'two-phase', 'manual')),
  phase text NOT NULL DEFAULT 'preparing'
    CHECK (phase IN ('preparing', 'schema_sync', 'copying', 'catching_up', 'finalizing', 'done', 'failed', 'cancelling')),
  overall_percent numeric(5,2) NOT NULL DEFAULT 0 CHECK (overall_percent BETWEEN 0 AND 100),
  tables_total integer NOT NULL DEFAULT 0 CHECK (tables_total >= 0),
  tables_done integer NOT NULL DEFAULT 0 CHECK (tables_done BETWEEN 0 AND tables_total),
  current_table text,
  current_table_percent numeric(5,2) CHECK (current_table_percent BETWEEN 0 AND 100),
  rows_total bigint CHECK (rows_total >= 0),
  rows_copied bigint NOT NULL DEFAULT 0 CHECK (rows_copied >= 0),
  bytes_total bigint CHECK (bytes_total >= 0),
  bytes_copied bigint NOT NULL DEFAULT 0 CHECK (bytes_copied >= 0),
  rows_per_second numeric CHECK (rows_per_second >= 0),
  bytes_per_second numeric CHECK (bytes_per_second >= 0),
  eta_seconds integer CHECK (eta_seconds >= 0),
  workers_active integer NOT NULL DEFAULT 0 CHECK (workers_active >= 0),
  workers_max integer CHECK (workers_max BETWEEN 1 AND 16),
  lag_bytes bigint CHECK (lag_bytes >= 0),
  error text,
  job_id bigint,
  options jsonb NOT NULL DEFAULT '{}',
  cancel_requested_at timestamptz,
  started_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE steep_repl.init_table_progress (
  node_id text NOT NULL REFERENCES steep_repl.nodes (node_id) ON DELETE CASCADE,
  schema_name text NOT NULL,
  table_name text NOT NULL,
  state text NOT NULL DEFAULT 'pending'
    CHECK (state IN ('pending', 'copying', 'copied', 'done', 'failed', 'skipped')),
  rows_total bigint CHECK (rows_total >= 0),
  rows_copied bigint NOT NULL DEFAULT 0 CHECK (rows_copied >= 0),
  bytes_total bigint CHECK (bytes_total >= 0),
  bytes_copied bigint NOT NULL DEFAULT 0 CHECK (bytes_copied >= 0),
  percent numeric(5,2) NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),
  rows_per_second numeric CHECK (rows_per_second >= 0),
  started_at timestamptz,
  completed_at timestamptz,
  error text,
  PRIMARY KEY (node_id, schema_name, table_name),
  CHECK (completed_at IS NULL OR started_at IS NULL OR completed_at >= started_at)
);

CREATE TABLE steep_repl.schema_fingerprints (
  node_id text NOT NULL,
  schema_name text NOT NULL,
  table_name text NOT NULL,
  fingerprint text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
  column_count integer NOT NULL CHECK (column_count >= 0),
  columns jsonb NOT NULL,
  table_facts jsonb NOT NULL DEFAULT '{}',
  captured_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node_id, schema_name, table_name)
);

CREATE TABLE steep_repl.snapshots (
  snapshot_id text PRIMARY KEY CHECK (snapshot_id ~ '^[A-Za-z0-9_.-]+$'),
  source_node_id text NOT NULL,
  slot_name text,
  lsn pg_lsn,
  path text,
  compression text NOT NULL DEFAULT 'none' CHECK (compression IN ('none', 'gzip', 'zstd', 'lz4')),
  status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'generating', 'complete', 'applying', 'applied', 'failed', 'expired')),
  table_count integer CHECK (table_count >= 0),
  total_bytes bigint CHECK (total_bytes >= 0),
  manifest jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz
);

CREATE TABLE steep_repl.init_slots (
  slot_name text PRIMARY KEY CHECK (slot_name ~ '^[a-z0-9_]{1,63}$'),
  source_node_id text NOT NULL,
  target_node_id text,
  lsn pg_lsn NOT NULL,
  snapshot_name text,
  status text NOT NULL DEFAULT 'prepared' CHECK (status IN ('prepared', 'in_use', 'completed', 'expired', 'dropped')),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  completed_at timestamptz
);

-- Events: one audit row and one NOTIFY on steep_repl_events. A payload that
-- would pass NOTIFY's 8000-byte limit is cut to the event's identity; the
-- full details stay in audit_log.
CREATE FUNCTION steep_repl.emit_event(p_event text, p_node_id text, p_details jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_audit_id bigint;
  v_at timestamptz;
  v_payload text;
BEGIN
  IF p_event IS NULL OR p_event !~ '^[a-z_]+\.[a-z_]+$' OR length(p_event) > 63 THEN
    RAISE EXCEPTION 'invalid event name %: expected area.what, e.g. init.started', quote_nullable(p_event)
      USING ERRCODE = 'SR004';
  END IF;
  IF length(p_node_id) > 63 THEN
    RAISE EXCEPTION 'invalid node id %: at most 63 characters', quote_literal(left(p_node_id, 70) || '...')
      USING ERRCODE = 'SR004';
  END IF;
  INSERT INTO steep_repl.audit_log (event, node_id, details)
  VALUES (p_event, p_node_id, coalesce(p_details, '{}'))
  RETURNING audit_id, occurred_at INTO v_audit_id, v_at;
  v_payload := jsonb_build_object('event', p_event, 'node_id', p_node_id, 'audit_id', v_audit_id,
                                  'at', v_at, 'details', coalesce(p_details, '{}'))::text;
  IF octet_length(v_payload) > 7900 THEN
    v_payload := jsonb_build_object('event', p_event, 'node_id', p_node_id, 'audit_id', v_audit_id,
                                    'at', v_at, 'truncated', true)::text;
  END IF;
  PERFORM pg_notify('steep_repl_events', v_payload);
  RETURN v_audit_id;
END $$;

CREATE FUNCTION steep_repl.unknown_node(p_node_id text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'unknown node %', quote_nullable(p_node_id)
    USING ERRCODE = 'SR001',
          HINT = coalesce('registered nodes: ' || (SELECT string_agg(quote_ident(node_id), ', ' ORDER BY node_id)
                                                   FROM steep_repl.nodes),
                          'no node is registered; use steep-repl node register');
END $$;

CREATE FUNCTION steep_repl.get_node(p_node_id text) RETURNS steep_repl.nodes
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_node steep_repl.nodes;
BEGIN
  SELECT * INTO v_node FROM steep_repl.nodes WHERE node_id = p_node_id;
  IF NOT FOUND THEN
    PERFORM steep_repl.unknown_node(p_node_id);
  END IF;
  RETURN v_node;
END $$;

CREATE FUNCTION steep_repl.local_node_id() RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT node_id FROM steep_repl.nodes WHERE is_local
$$;

-- The one enforcement point of the state machine: every change of
-- nodes.init_state, through transition() or a raw UPDATE, passes here.
CREATE FUNCTION steep_repl.enforce_init_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_allowed text;
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.init_state <> 'uninitialized' THEN
      RAISE EXCEPTION 'a node is registered as uninitialized, not %', NEW.init_state
        USING ERRCODE = 'SR003';
    END IF;
    RETURN NEW;
  END IF;
  -- A state to itself is not in init_transitions either: a second request to
  -- start the same phase is refused, not silently merged with the first.
  IF NOT EXISTS (SELECT 1 FROM steep_repl.init_transitions
                 WHERE from_state = OLD.init_state AND to_state = NEW.init_state) THEN
    SELECT string_agg(to_state, ', ' ORDER BY to_state) INTO v_allowed
      FROM steep_repl.init_transitions WHERE from_state = OLD.init_state;
    RAISE EXCEPTION 'illegal init_state transition for node %: % -> %', quote_ident(OLD.node_id), OLD.init_state, NEW.init_state
      USING ERRCODE = 'SR003',
            HINT = format('from %s a node may go to: %s', OLD.init_state, v_allowed);
  END IF;
  IF NEW.init_state = 'preparing' THEN
    NEW.init_started_at := now();
    NEW.init_completed_at := NULL;
  ELSIF NEW.init_state = 'synchronized' THEN
    NEW.init_completed_at := now();
  ELSIF NEW.init_state = 'uninitialized' THEN
    NEW.init_completed_at := NULL;
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER nodes_enforce_init_transition
  BEFORE INSERT OR UPDATE OF init_state ON steep_repl.nodes
  FOR EACH ROW EXECUTE FUNCTION steep_repl.enforce_init_transition();

-- The reason for a transition travels in a transaction-local setting so a raw
-- UPDATE and transition() produce the same audit row and NOTIFY.
CREATE FUNCTION steep_repl.announce_init_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_details jsonb := coalesce(nullif(current_setting('steep_repl.transition_details', true), '')::jsonb, '{}');
  v_audit_id bigint;
  v_at timestamptz;
BEGIN
  INSERT INTO steep_repl.audit_log (event, node_id, from_state, to_state, details)
  VALUES ('init.state_change', NEW.node_id, OLD.init_state, NEW.init_state,
          v_details || jsonb_build_object('source_node', NEW.init_source_node))
  RETURNING audit_id, occurred_at INTO v_audit_id, v_at;
  PERFORM pg_notify('steep_repl_state', jsonb_build_object(
    'node_id', NEW.node_id,
    'from', OLD.init_state,
    'to', NEW.init_state,
    'source_node', NEW.init_source_node,
    'audit_id', v_audit_id,
    'at', v_at,
    'reason', left(v_details ->> 'reason', 1000))::text);
  RETURN NULL;
END $$;

CREATE TRIGGER nodes_announce_init_transition
  AFTER UPDATE OF init_state ON steep_repl.nodes
  FOR EACH ROW WHEN (OLD.init_state IS DISTINCT FROM NEW.init_state)
  EXECUTE FUNCTION steep_repl.announce_init_transition();

CREATE FUNCTION steep_repl.transition(p_node_id text, p_to_state text, p_details jsonb DEFAULT '{}')
RETURNS steep_repl.nodes LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes;
BEGIN
  -- Locked, so a concurrent remove_node cannot leave the UPDATE below empty.
  PERFORM 1 FROM steep_repl.nodes WHERE node_id = p_node_id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM steep_repl.unknown_node(p_node_id);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM steep_repl.init_states WHERE state = p_to_state) THEN
    RAISE EXCEPTION 'unknown init_state %', quote_nullable(p_to_state)
      USING ERRCODE = 'SR004',
            HINT = 'states: ' || (SELECT string_agg(state, ', ' ORDER BY state) FROM steep_repl.init_states);
  END IF;
  PERFORM set_config('steep_repl.transition_details', coalesce(p_details, '{}')::text, true);
  UPDATE steep_repl.nodes SET init_state = p_to_state WHERE node_id = p_node_id RETURNING * INTO v_node;
  PERFORM set_config('steep_repl.transition_details', '', true);
  RETURN v_node;
END $$;

CREATE FUNCTION steep_repl.register_node(
  p_node_id text,
  p_host text,
  p_port integer DEFAULT 5432,
  p_dbname text DEFAULT NULL,
  p_user_name text DEFAULT NULL,
  p_priority integer DEFAULT 50,
  p_node_name text DEFAULT NULL,
  p_is_local boolean DEFAULT false
) RETURNS steep_repl.nodes LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes;
BEGIN
  IF p_node_id IS NULL OR btrim(p_node_id) = '' THEN
    RAISE EXCEPTION 'node id must not be empty' USING ERRCODE = 'SR004';
  END IF;
  IF length(p_node_id) > 63 OR p_node_id ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'node id % is not valid: at most 63 characters, no control characters', quote_literal(p_node_id)
      USING ERRCODE = 'SR004';
  END IF;
  IF p_host IS NULL OR btrim(p_host) = '' THEN
    RAISE EXCEPTION 'host of node % must not be empty', quote_ident(p_node_id) USING ERRCODE = 'SR004';
  END IF;
  IF p_port IS NULL OR p_port NOT BETWEEN 1 AND 65535 THEN
    RAISE EXCEPTION 'port % of node % is outside 1-65535', p_port, quote_ident(p_node_id) USING ERRCODE = 'SR004';
  END IF;
  IF p_dbname IS NULL OR p_dbname = '' THEN
    RAISE EXCEPTION 'dbname of node % must not be empty', quote_ident(p_node_id) USING ERRCODE = 'SR004';
  END IF;
  IF p_priority IS NULL OR p_priority NOT BETWEEN 1 AND 100 THEN
    RAISE EXCEPTION 'priority % of node % is outside 1-100', p_priority, quote_ident(p_node_id) USING ERRCODE = 'SR004';
  END IF;
  IF EXISTS (SELECT 1 FROM steep_repl.nodes WHERE node_id = p_node_id) THEN
    RAISE EXCEPTION 'node % is already registered', quote_ident(p_node_id)
      USING ERRCODE = 'SR002', HINT = 'remove it first (steep-repl node remove) or choose another id';
  END IF;
  IF p_is_local AND EXISTS (SELECT 1 FROM steep_repl.nodes WHERE is_local) THEN
    RAISE EXCEPTION 'this database is already registered as node %', quote_ident(steep_repl.local_node_id())
      USING ERRCODE = 'SR002';
  END IF;
  BEGIN
    INSERT INTO steep_repl.nodes (node_id, node_name, host, port, dbname, user_name, priority, is_local)
    VALUES (p_node_id, coalesce(nullif(p_node_name, ''), p_node_id), btrim(p_host), p_port, p_dbname,
            nullif(p_user_name, ''), p_priority, coalesce(p_is_local, false))
    RETURNING * INTO v_node;
  EXCEPTION WHEN unique_violation THEN
    -- a concurrent registration won the race past the checks above
    RAISE EXCEPTION 'node % (or the local node) was registered concurrently', quote_ident(p_node_id)
      USING ERRCODE = 'SR002';
  END;
  PERFORM steep_repl.emit_event('node.registered', p_node_id, jsonb_build_object(
    'host', v_node.host, 'port', v_node.port, 'dbname', v_node.dbname, 'user', v_node.user_name,
    'priority', v_node.priority, 'is_local', v_node.is_local));
  RETURN v_node;
END $$;

CREATE FUNCTION steep_repl.remove_node(p_node_id text) RETURNS steep_repl.nodes
LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes := steep_repl.get_node(p_node_id);
BEGIN
  IF (SELECT in_progress FROM steep_repl.init_states WHERE state = v_node.init_state) THEN
    RAISE EXCEPTION 'node % is %; cancel its initialization before removing it', quote_ident(p_node_id), v_node.init_state
      USING ERRCODE = 'SR006';
  END IF;
  IF EXISTS (SELECT 1 FROM steep_repl.nodes n JOIN steep_repl.init_states s ON s.state = n.init_state
             WHERE n.init_source_node = p_node_id AND s.in_progress) THEN
    RAISE EXCEPTION 'node % is the source of an initialization in progress', quote_ident(p_node_id)
      USING ERRCODE = 'SR006';
  END IF;
  UPDATE steep_repl.nodes SET init_source_node = NULL WHERE init_source_node = p_node_id;
  DELETE FROM steep_repl.nodes WHERE node_id = p_node_id;
  PERFORM steep_repl.emit_event('node.removed', p_node_id, '{}');
  RETURN v_node;
END $$;

-- Called by the agent of this node every few seconds.
CREATE FUNCTION steep_repl.heartbeat() RETURNS steep_repl.nodes
LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes;
BEGIN
  UPDATE steep_repl.nodes SET last_seen = now(), status = 'healthy' WHERE is_local RETURNING * INTO v_node;
  RETURN v_node;
END $$;

-- Progress rows announce themselves; listeners get the whole row (without
-- options) on steep_repl_progress. Only the error text can be long: it is
-- cut to 1000 characters in the payload when the row would pass NOTIFY's
-- 8000-byte limit, and the full text stays in the row.
CREATE FUNCTION steep_repl.announce_progress() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_payload jsonb := to_jsonb(NEW) - 'options';
BEGIN
  IF octet_length(v_payload::text) > 7900 THEN
    v_payload := v_payload || jsonb_build_object('error', left(NEW.error, 1000), 'truncated', true);
  END IF;
  PERFORM pg_notify('steep_repl_progress', v_payload::text);
  RETURN NULL;
END $$;

CREATE TRIGGER init_progress_announce
  AFTER INSERT OR UPDATE ON steep_repl.init_progress
  FOR EACH ROW EXECUTE FUNCTION steep_repl.announce_progress();

-- Enqueue a job for this node's agent. A job key makes a second request for
-- the same work replace the queued one instead of running twice. Tasks record
-- their own failures in the tables; attempts > 1 let a job that was running
-- when its agent died run again after the agent restarts.
CREATE FUNCTION steep_repl.enqueue(p_task text, p_payload jsonb, p_job_key text DEFAULT NULL, p_max_attempts integer DEFAULT 5)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_job_id bigint;
BEGIN
  IF to_regnamespace('graphile_worker') IS NULL THEN
    RAISE EXCEPTION 'the job queue is not installed in this database'
      USING ERRCODE = 'SR004', HINT = 'run steep-repl install --db <this database>';
  END IF;
  SELECT id INTO v_job_id FROM graphile_worker.add_job(p_task, p_payload::json, job_key => p_job_key, max_attempts => p_max_attempts);
  RETURN v_job_id;
END $$;

-- Ask the agent to stop a running job. The agent aborts the job whose
-- payload names this node (or the job with this id) within milliseconds.
CREATE FUNCTION steep_repl.request_job_cancel(p_node_id text, p_job_id bigint DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF p_node_id IS NULL AND p_job_id IS NULL THEN
    RAISE EXCEPTION 'name the node or the job to cancel' USING ERRCODE = 'SR004';
  END IF;
  IF p_node_id IS NOT NULL THEN
    PERFORM steep_repl.get_node(p_node_id);
  END IF;
  PERFORM pg_notify('steep_repl_cancel', jsonb_build_object('node_id', p_node_id, 'job_id', p_job_id)::text);
END $$;

CREATE VIEW steep_repl.node_overview AS
SELECT n.node_id, n.node_name, n.host, n.port, n.dbname, n.user_name, n.priority,
       n.status, n.last_seen, n.is_local,
       -- This database's own row is only as fresh as its agent's heartbeat
       -- (every 5 s by default); a peer's row says what its last probe saw.
       CASE WHEN n.is_local AND n.last_seen IS NULL THEN 'no agent'
            WHEN n.is_local AND now() - n.last_seen > interval '15 seconds' THEN 'agent silent'
            ELSE n.status END AS health,
       n.init_state, s.in_progress AS init_in_progress, n.init_source_node,
       n.init_started_at, n.init_completed_at,
       p.phase, p.overall_percent, p.tables_done, p.tables_total,
       p.rows_per_second, p.eta_seconds, p.lag_bytes, p.error
FROM steep_repl.nodes n
JOIN steep_repl.init_states s ON s.state = n.init_state
LEFT JOIN steep_repl.init_progress p ON p.node_id = n.node_id;
