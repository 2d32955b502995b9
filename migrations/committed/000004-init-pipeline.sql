--! Previous: sha1:82a3747932e543f17fd4a70f0563999f30800946
--! Hash: sha1:0e760c225b5f689fe7da6fcad3fb349083142660
--! Message: init pipeline

-- One init pipeline for every method: methods and their options are rows,
-- start_init dispatches on them, and what a method records to resume has a
-- table of its own. From this migration on, functions and views live one per
-- file in migrations/functions and migrations/views and are (re)created after
-- the committed migrations by every install; a migration only changes tables
-- and drops what a new definition cannot replace.

-- Committed on a guess in 000001 and never used: the issues that need them
-- (two-phase snapshots, manual init, a coordinator) define their own.
DROP TABLE steep_repl.coordinator_state, steep_repl.snapshots, steep_repl.init_slots;

-- The options any method may accept. kind decides how a value is read:
--   boolean; integer (a whole number within min..max); choice (one of
--   choices); duration (seconds, or an interval text such as '2 hours',
--   stored as whole seconds, within min..max); bytes (a whole number of
--   bytes, or a size text such as '1GB', within min..max).
CREATE TABLE steep_repl.init_option_specs (
  option text PRIMARY KEY CHECK (option ~ '^[a-z][a-z0-9_]*$'),
  kind text NOT NULL CHECK (kind IN ('boolean', 'integer', 'choice', 'duration', 'bytes')),
  min_value numeric,
  max_value numeric CHECK (max_value >= min_value),
  choices text[] CHECK ((kind = 'choice') = (choices IS NOT NULL)),
  default_value jsonb NOT NULL DEFAULT 'null',
  description text NOT NULL
);

INSERT INTO steep_repl.init_option_specs (option, kind, min_value, max_value, choices, default_value, description) VALUES
  ('schema_sync', 'choice', NULL, NULL, ARRAY['strict', 'auto', 'manual'], '"strict"',
   'schema check before the copy: strict refuses differences, auto applies the DDL plan, manual proceeds after a confirmation'),
  ('force', 'boolean', NULL, NULL, NULL, 'false',
   'empty target tables that already hold rows (on this node only, not replicated)'),
  ('resume', 'boolean', NULL, NULL, NULL, 'false',
   'resume a failed initialization from where it stopped'),
  ('timeout', 'duration', 1, 31536000, NULL, 'null',
   'fail the initialization if it is not synchronized within this many seconds (at most a year)'),
  ('lag_threshold_bytes', 'bytes', 0, 1099511627776, NULL, '1048576',
   'synchronized once the subscription is this close to the source (at most 1TB)'),
  ('parallel', 'integer', 1, 16, NULL, 'null',
   'copy workers; snapshot: table-sync workers (sets max_sync_workers_per_subscription on the target server)'),
  ('split_tables_larger_than', 'bytes', 1048576, 1125899906842624, NULL, 'null',
   'direct: split a table whose heap plus TOAST is larger than this into parts copied in parallel'),
  ('max_parts', 'integer', 1, 1024, NULL, 'null',
   'direct: at most this many parts per table');

-- The phases init_progress may report; a method names those it goes through.
CREATE TABLE steep_repl.init_methods (
  method text PRIMARY KEY CHECK (method ~ '^[a-z][a-z0-9-]*$'),
  -- graphile-worker task identifier the agent runs for it
  task text NOT NULL UNIQUE CHECK (task ~ '^[a-z][a-z0-9_]*$'),
  available boolean NOT NULL,
  options text[] NOT NULL,
  phases text[] NOT NULL
    CHECK (cardinality(phases) > 0
           AND phases <@ ARRAY['preparing', 'schema_sync', 'copying', 'catching_up', 'finalizing']),
  position integer NOT NULL UNIQUE,
  description text NOT NULL
);

COMMENT ON TABLE steep_repl.init_methods IS
  'How a node can be initialized. start_init dispatches on it; the CLI and the live view offer what it marks available.';

INSERT INTO steep_repl.init_methods (method, task, available, options, phases, position, description) VALUES
  ('snapshot', 'init_snapshot', true,
   ARRAY['schema_sync', 'force', 'resume', 'timeout', 'lag_threshold_bytes', 'parallel'],
   ARRAY['preparing', 'schema_sync', 'copying', 'catching_up', 'finalizing'], 1,
   'CREATE SUBSCRIPTION with copy_data: PostgreSQL copies each table, then streams'),
  ('direct', 'init_direct', false,
   ARRAY['schema_sync', 'force', 'resume', 'timeout', 'lag_threshold_bytes', 'parallel', 'split_tables_larger_than', 'max_parts'],
   ARRAY['preparing', 'schema_sync', 'copying', 'catching_up', 'finalizing'], 2,
   'steep-repl copies every table on one exported snapshot in parallel parts, then subscribes from its slot'),
  ('two-phase', 'init_two_phase', false,
   ARRAY['schema_sync', 'resume', 'timeout', 'lag_threshold_bytes', 'parallel'],
   ARRAY['preparing', 'schema_sync', 'copying', 'catching_up', 'finalizing'], 3,
   'loads a snapshot that snapshot generate wrote to files, then subscribes from its slot'),
  ('manual', 'init_manual', false,
   ARRAY['schema_sync', 'timeout', 'lag_threshold_bytes'],
   ARRAY['preparing', 'schema_sync', 'catching_up', 'finalizing'], 4,
   'the DBA restores a pg_dump or pg_basebackup taken at a prepared slot; steep-repl subscribes from it');

-- init_progress_method_check stays: it names the methods there can be, this
-- key ties a progress row to the method's row.
ALTER TABLE steep_repl.init_progress
  ADD CONSTRAINT init_progress_method_fkey FOREIGN KEY (method) REFERENCES steep_repl.init_methods (method);

-- What a method records while it works, so a resumed, failed or cancelled
-- run knows what exists: one row per init, removed with its progress row.
-- init_progress.options stays what the user asked for.
CREATE TABLE steep_repl.init_method_state (
  node_id text PRIMARY KEY REFERENCES steep_repl.init_progress (node_id) ON DELETE CASCADE,
  -- the publication and subscription of the pair, and the slot's default name
  replication_name text NOT NULL,
  slot_name text,
  subscription_oid oid,
  -- false when the source already holds this node's data (the reverse of an
  -- established pair): nothing is copied and a cancel empties nothing
  copy_data boolean,
  reverse_of_pair boolean,
  -- the source's WAL position when every table was copied; synchronized
  -- once the slot confirmed it
  lsn_target pg_lsn,
  updated_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO steep_repl.init_method_state (node_id, replication_name, slot_name, subscription_oid, copy_data, reverse_of_pair, lsn_target)
SELECT p.node_id, coalesce(p.subscription_name, steep_repl.replication_name(p.source_node_id, p.node_id)),
       coalesce(p.subscription_name, steep_repl.replication_name(p.source_node_id, p.node_id)),
       (p.options ->> 'subscription_oid')::oid, (p.options ->> 'copy_data')::boolean,
       (p.options ->> 'reverse_of_pair')::boolean, p.lsn_target
FROM steep_repl.init_progress p
WHERE p.source_node_id IS NOT NULL;

UPDATE steep_repl.init_progress SET options = options - 'copy_data' - 'subscription_oid' - 'reverse_of_pair';

ALTER TABLE steep_repl.init_progress DROP COLUMN lsn_target, DROP COLUMN subscription_name;

-- Replaced by init_options(method, options); start_init's job payload and
-- the table lists get their definitions in migrations/functions.
DROP FUNCTION steep_repl.init_options(jsonb);
