--! Previous: sha1:289f5202f4f2015b0f3854902ac6a67cac3129fd
--! Hash: sha1:fed2924bd1feaf8398f458a06606c8d761d7850e
--! Message: verify and reinit

-- Verify and reinit (SPEC 4.5, issue 13): a node's tables compared with a
-- peer's by hashes over key ranges (verify_runs, verify_tables,
-- verify_differences), what a verify found that persists (node_divergence,
-- which makes the node DIVERGED) and a reinit of chosen tables, a schema or
-- the whole node. Tables and data only; the functions live in
-- migrations/functions.

-- A reinit that finds the re-copied tables still differing ends diverged;
-- a reinit cancelled before it changed anything returns there too.
INSERT INTO steep_repl.init_transitions (from_state, to_state) VALUES ('reinitializing', 'diverged');

-- A reinit's last phase: the re-copied tables verified.
ALTER TABLE steep_repl.init_progress DROP CONSTRAINT init_progress_phase_check;
ALTER TABLE steep_repl.init_progress ADD CONSTRAINT init_progress_phase_check
  CHECK (phase IN ('preparing', 'schema_sync', 'copying', 'catching_up', 'verifying', 'finalizing', 'done', 'failed', 'cancelling'));

-- A reinit in progress (NULL for an init): {scope: tables|schema|full,
-- tables: [{schema_name, table_name}], previous_state, step, verify_id}.
-- The row is the node's init_progress row, so progress, the live bar and
-- cancel work as for an init.
ALTER TABLE steep_repl.init_progress
  ADD COLUMN reinit jsonb CHECK (reinit IS NULL OR (jsonb_typeof(reinit) = 'object' AND reinit ->> 'scope' IN ('tables', 'schema', 'full')));

-- One verify of a node against a peer. The job on the node's agent fills
-- it; peer_lsn is the peer's WAL position at the end of the first pass (a
-- difference counts only if it persists once the node applied past it).
CREATE TABLE steep_repl.verify_runs (
  verify_id bigserial PRIMARY KEY,
  node_id text NOT NULL REFERENCES steep_repl.nodes (node_id) ON DELETE CASCADE,
  peer_node_id text REFERENCES steep_repl.nodes (node_id) ON DELETE SET NULL,
  reason text NOT NULL DEFAULT 'verify' CHECK (reason IN ('verify', 'reinit')),
  scope jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(scope) = 'object'),
  options jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
  state text NOT NULL DEFAULT 'queued'
    CHECK (state IN ('queued', 'running', 'equal', 'differs', 'unsettled', 'failed', 'cancelled')),
  phase text CHECK (phase IN ('planning', 'hashing', 'drilling', 'rechecking', 'done')),
  percent numeric(5,2) NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),
  tables_total integer NOT NULL DEFAULT 0 CHECK (tables_total >= 0),
  tables_done integer NOT NULL DEFAULT 0 CHECK (tables_done BETWEEN 0 AND tables_total),
  rows_compared bigint NOT NULL DEFAULT 0 CHECK (rows_compared >= 0),
  peer_lsn pg_lsn,
  error text,
  hint text,
  job_id bigint,
  cancel_requested_at timestamptz,
  requested_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX verify_runs_node ON steep_repl.verify_runs (node_id, verify_id DESC);

-- Per table of a verify. compared: key_ranges (by primary key) or
-- whole_table (no primary key: every row's hash, as a multiset).
CREATE TABLE steep_repl.verify_tables (
  verify_id bigint NOT NULL REFERENCES steep_repl.verify_runs (verify_id) ON DELETE CASCADE,
  schema_name text NOT NULL,
  table_name text NOT NULL,
  status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'hashing', 'drilling', 'rechecking', 'equal', 'differs', 'unsettled')),
  compared text CHECK (compared IN ('key_ranges', 'whole_table')),
  note text,
  rows_estimate bigint CHECK (rows_estimate >= 0),
  ranges_total integer NOT NULL DEFAULT 0 CHECK (ranges_total >= 0),
  ranges_done integer NOT NULL DEFAULT 0 CHECK (ranges_done >= 0),
  ranges_differing integer NOT NULL DEFAULT 0 CHECK (ranges_differing >= 0),
  rows_compared bigint NOT NULL DEFAULT 0 CHECK (rows_compared >= 0),
  rows_missing bigint NOT NULL DEFAULT 0 CHECK (rows_missing >= 0),
  rows_extra bigint NOT NULL DEFAULT 0 CHECK (rows_extra >= 0),
  rows_different bigint NOT NULL DEFAULT 0 CHECK (rows_different >= 0),
  rows_unsettled bigint NOT NULL DEFAULT 0 CHECK (rows_unsettled >= 0),
  sample_keys jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(sample_keys) = 'array'),
  started_at timestamptz,
  finished_at timestamptz,
  PRIMARY KEY (verify_id, schema_name, table_name)
);

-- Every differing key a verify found, up to its key limit per table.
-- missing: on the peer, not on the node; extra: on the node only;
-- different: on both with other values; unsettled: kept changing on the
-- peer through every recheck.
CREATE TABLE steep_repl.verify_differences (
  verify_id bigint NOT NULL,
  schema_name text NOT NULL,
  table_name text NOT NULL,
  key jsonb NOT NULL,
  kind text NOT NULL CHECK (kind IN ('missing', 'extra', 'different', 'unsettled')),
  PRIMARY KEY (verify_id, schema_name, table_name, key),
  FOREIGN KEY (verify_id, schema_name, table_name) REFERENCES steep_repl.verify_tables ON DELETE CASCADE
);

-- The tables of a node that differ from its peer now: a verify that found
-- a table different puts it here, one that found it equal or a reinit that
-- re-copied it takes it out. A node with rows here is DIVERGED.
CREATE TABLE steep_repl.node_divergence (
  node_id text NOT NULL REFERENCES steep_repl.nodes (node_id) ON DELETE CASCADE,
  schema_name text NOT NULL,
  table_name text NOT NULL,
  peer_node_id text,
  verify_id bigint REFERENCES steep_repl.verify_runs (verify_id) ON DELETE SET NULL,
  rows_missing bigint NOT NULL DEFAULT 0,
  rows_extra bigint NOT NULL DEFAULT 0,
  rows_different bigint NOT NULL DEFAULT 0,
  found_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node_id, schema_name, table_name)
);
