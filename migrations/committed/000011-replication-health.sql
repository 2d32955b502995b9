--! Previous: sha1:16730889c3cdf2ca04ccb8f3bdb464601e8d9122
--! Hash: sha1:ba83c6d33e33631a92d2eca2444578b345cbcfe7
--! Message: replication health

-- Replication health after SYNCHRONIZED (issue 15): the agent of each node
-- watches its steep-repl subscriptions (it is their target) and slots (it
-- is their source) every few seconds; steep_repl.observe_replication
-- records the facts of each in replication_health with a decision and a
-- reason, keeps a bounded history for rates and lag in time, and emits
-- replication.degraded / replication.recovered on change. Thresholds are
-- health_settings, one row a DBA updates. Tables and data only; the
-- functions live in migrations/functions.

-- The thresholds, one row (kept by pg_dump: the extension lists it). Each
-- CHECK is named in words, so a refused UPDATE says what is wrong.
CREATE TABLE steep_repl.health_settings (
  only_row boolean PRIMARY KEY DEFAULT true
    CONSTRAINT "health_settings has one row" CHECK (only_row),
  -- the agent's observation interval
  watch_interval_seconds numeric NOT NULL DEFAULT 5
    CONSTRAINT "watch_interval_seconds must be between 0.5 and 3600" CHECK (watch_interval_seconds BETWEEN 0.5 AND 3600),
  -- a subscription lagging more than this, in bytes or in time, is degraded
  lag_bytes bigint NOT NULL DEFAULT 1073741824
    CONSTRAINT "lag_bytes must be positive" CHECK (lag_bytes > 0),
  lag_seconds numeric NOT NULL DEFAULT 300
    CONSTRAINT "lag_seconds must be positive" CHECK (lag_seconds > 0),
  -- the window of "N errors in 5 min" and of divergence conflicts
  error_window_seconds integer NOT NULL DEFAULT 300
    CONSTRAINT "error_window_seconds must be between 10 and 86400" CHECK (error_window_seconds BETWEEN 10 AND 86400),
  -- an enabled subscription without an apply worker this long is degraded
  worker_missing_seconds integer NOT NULL DEFAULT 30
    CONSTRAINT "worker_missing_seconds must be positive" CHECK (worker_missing_seconds > 0),
  -- a slot retaining more WAL than this is degraded
  slot_retained_bytes bigint NOT NULL DEFAULT 10737418240
    CONSTRAINT "slot_retained_bytes must be positive" CHECK (slot_retained_bytes > 0),
  -- safe_wal_size below this is degraded (only with max_slot_wal_keep_size set)
  slot_safe_wal_bytes bigint NOT NULL DEFAULT 1073741824
    CONSTRAINT "slot_safe_wal_bytes must be positive" CHECK (slot_safe_wal_bytes > 0),
  -- a slot (not a prepared one) not in use this long is degraded
  slot_inactive_seconds integer NOT NULL DEFAULT 300
    CONSTRAINT "slot_inactive_seconds must be positive" CHECK (slot_inactive_seconds > 0),
  -- how far back replication_health_history goes
  history_seconds integer NOT NULL DEFAULT 3600
    CONSTRAINT "history_seconds must be at most 604800 (7 days)" CHECK (history_seconds <= 604800),
  updated_at timestamptz,
  CONSTRAINT "history_seconds must be at least error_window_seconds" CHECK (history_seconds >= error_window_seconds),
  -- lag in time is known as far back as the samples go
  CONSTRAINT "history_seconds must be at least lag_seconds" CHECK (history_seconds >= lag_seconds)
);

COMMENT ON TABLE steep_repl.health_settings IS
  'Thresholds of replication health (one row: UPDATE it). Read by steep_repl.observe_replication and the agent.';

INSERT INTO steep_repl.health_settings DEFAULT VALUES;

-- One current row per watched subscription or slot of this node. problems
-- are codes in a fixed order, reason their phrases joined by '; ' (NULL
-- when healthy). Subscription columns are NULL on a slot's row and the
-- other way round.
CREATE TABLE steep_repl.replication_health (
  kind text NOT NULL CHECK (kind IN ('subscription', 'slot')),
  name text NOT NULL,
  node_id text NOT NULL REFERENCES steep_repl.nodes (node_id) ON DELETE CASCADE,
  -- the source node of a subscription, the node a slot feeds; NULL if unknown
  peer_node_id text REFERENCES steep_repl.nodes (node_id) ON DELETE SET NULL,
  status text NOT NULL DEFAULT 'healthy' CHECK (status IN ('healthy', 'degraded')),
  problems text[] NOT NULL DEFAULT '{}',
  reason text,
  degraded_since timestamptz,
  first_observed_at timestamptz NOT NULL,
  observed_at timestamptz NOT NULL,
  -- subscription: the server's facts
  subscription_oid oid,
  enabled boolean,
  -- the leader apply worker, NULL if none; when one was last seen, and
  -- since when an enabled subscription has had none
  worker_pid integer,
  worker_seen_at timestamptz,
  worker_missing_since timestamptz,
  apply_error_count bigint,
  sync_error_count bigint,
  -- the observation at which the count last rose
  apply_errors_changed_at timestamptz,
  sync_errors_changed_at timestamptz,
  -- source_confirmed_lsn at that observation: a failing worker moves no
  -- further, so apply_errors ends only once the position moved past it
  apply_errors_lsn pg_lsn,
  -- tables of the subscription not yet ready (pg_subscription_rel): table
  -- sync errors end only once none is left, or the error window passed
  tables_syncing integer,
  -- conflict type -> count, every confl_* counter (PostgreSQL 18 and
  -- later; NULL before)
  conflicts jsonb,
  -- rises within error_window_seconds
  apply_errors_recent bigint,
  sync_errors_recent bigint,
  conflicts_recent jsonb,
  received_lsn pg_lsn,
  latest_end_lsn pg_lsn,
  last_msg_receipt_time timestamptz,
  slot_name text,
  -- subscription: the source's facts, as the agent read them there
  source_lsn pg_lsn,
  source_confirmed_lsn pg_lsn,
  source_slot_active boolean,
  -- false: the source was reached and has no slot of that name
  source_slot_exists boolean,
  source_error text,
  -- since when the source could not be asked (source_unreachable takes two
  -- rounds in a row: one failed connection is no problem yet)
  source_error_since timestamptz,
  lag_bytes bigint,
  lag_seconds numeric,
  -- lag_seconds is a lower bound: the oldest sample was already past the
  -- confirmed position
  lag_seconds_at_least boolean,
  lag_trend text CHECK (lag_trend IN ('growing', 'shrinking', 'steady')),
  -- slot
  slot_active boolean,
  active_pid integer,
  wal_status text,
  safe_wal_size bigint,
  retained_bytes bigint,
  restart_lsn pg_lsn,
  confirmed_flush_lsn pg_lsn,
  prepared boolean,
  inactive_seen_since timestamptz,
  PRIMARY KEY (kind, name),
  CHECK ((status = 'degraded') = (cardinality(problems) > 0)),
  CHECK ((status = 'degraded') = (reason IS NOT NULL))
);

COMMENT ON TABLE steep_repl.replication_health IS
  'One row per steep-repl subscription and slot of this node: facts, health and reason (steep_repl.observe_replication).';

-- When the agent's watch of this node last completed a round
-- (observe_replication sets it on the local row every round, also with
-- nothing to watch): node_overview tells a watch that never ran or stopped
-- from one with nothing to say.
ALTER TABLE steep_repl.nodes ADD COLUMN replication_observed_at timestamptz;

-- What rates and lag in time are computed from: one sample per object and
-- observation, trimmed to health_settings.history_seconds. A row's history
-- goes with it.
CREATE TABLE steep_repl.replication_health_history (
  kind text NOT NULL,
  name text NOT NULL,
  observed_at timestamptz NOT NULL,
  apply_error_count bigint,
  sync_error_count bigint,
  conflicts jsonb,
  source_lsn pg_lsn,
  source_confirmed_lsn pg_lsn,
  lag_bytes bigint,
  retained_bytes bigint,
  PRIMARY KEY (kind, name, observed_at),
  FOREIGN KEY (kind, name) REFERENCES steep_repl.replication_health (kind, name) ON DELETE CASCADE
);

-- the trim, every observation
CREATE INDEX replication_health_history_observed_at ON steep_repl.replication_health_history (observed_at);
