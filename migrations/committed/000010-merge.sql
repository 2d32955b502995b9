--! Previous: sha1:fed2924bd1feaf8398f458a06606c8d761d7850e
--! Hash: sha1:16730889c3cdf2ca04ccb8f3bdb464601e8d9122
--! Message: merge

-- Merge two nodes that both hold data (SPEC 4.6, issue 14): an analysis of
-- their overlap (merge_runs, merge_tables), conflicts a DBA resolves by hand
-- (merge_conflicts), and the merge itself, whose progress is each node's
-- init_progress row (method 'merge'). The run's rows live in the database
-- of node A, whose agent coordinates; node B's database holds its
-- init_progress row only. Tables and data only; the functions live in
-- migrations/functions.

-- A merge's final verify found rows that differ: both nodes diverged.
INSERT INTO steep_repl.init_transitions (from_state, to_state) VALUES ('catching_up', 'diverged');

-- A merge shows as an init of method 'merge' on both nodes (progress, the
-- live bar, node status), never offered by start_init: init_method()
-- refuses it and start_merge starts it.
ALTER TABLE steep_repl.init_methods DROP CONSTRAINT init_methods_phases_check;
ALTER TABLE steep_repl.init_methods ADD CONSTRAINT init_methods_phases_check
  CHECK (cardinality(phases) > 0
         AND phases <@ ARRAY['preparing', 'schema_sync', 'copying', 'catching_up', 'verifying', 'finalizing']);
INSERT INTO steep_repl.init_methods (method, task, available, options, phases, position, description) VALUES
  ('merge', 'merge_nodes', false, ARRAY[]::text[], ARRAY['preparing', 'copying', 'catching_up', 'verifying'], 5,
   'two nodes that both hold data exchange what the other lacks, then replicate both ways (steep-repl node merge)');
ALTER TABLE steep_repl.init_progress DROP CONSTRAINT init_progress_method_check;
ALTER TABLE steep_repl.init_progress ADD CONSTRAINT init_progress_method_check
  CHECK (method IN ('snapshot', 'direct', 'two-phase', 'manual', 'merge'));

-- A merge in progress on this node (NULL otherwise): {merge_id, coordinator
-- (node A, whose database has the run), peer_node_id, role (a | b),
-- strategy, step, error, outcome, finished_at}. The step that committed
-- this node's share of the exchange is written in the same transaction, so
-- a resumed merge knows whether it happened.
ALTER TABLE steep_repl.init_progress
  ADD COLUMN merge jsonb CHECK (merge IS NULL OR (jsonb_typeof(merge) = 'object' AND merge ->> 'role' IN ('a', 'b')));

-- One analysis or merge of node A (this database's node) with node B.
-- mode: analyze (counts and sample keys), dry_run (also what a strategy
-- would write), record (manual: every conflict to merge_conflicts), merge.
-- Only merge writes to the nodes.
CREATE TABLE steep_repl.merge_runs (
  merge_id bigserial PRIMARY KEY,
  node_a text NOT NULL REFERENCES steep_repl.nodes (node_id) ON DELETE CASCADE,
  node_b text NOT NULL REFERENCES steep_repl.nodes (node_id) ON DELETE CASCADE,
  mode text NOT NULL CHECK (mode IN ('analyze', 'dry_run', 'record', 'merge')),
  strategy text CHECK (strategy IN ('prefer-a', 'prefer-b', 'last-modified', 'manual')),
  -- column (last-modified), tables, schema, quiesce, resolutions_of (the
  -- record run whose resolutions a manual merge applies), timeout
  options jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
  scope jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(scope) = 'object'),
  state text NOT NULL DEFAULT 'queued'
    CHECK (state IN ('queued', 'running', 'analyzed', 'resolving', 'merged', 'differs', 'failed', 'cancelled')),
  phase text CHECK (phase IN ('preparing', 'comparing', 'exchanging', 'catching_up', 'verifying', 'done')),
  -- where a merge is, for a resumed job: queued, prepared (slots made),
  -- compared, exchanged (the point of no return), subscribed, verified
  step text NOT NULL DEFAULT 'queued',
  percent numeric(5,2) NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),
  tables_total integer NOT NULL DEFAULT 0 CHECK (tables_total >= 0),
  tables_done integer NOT NULL DEFAULT 0 CHECK (tables_done BETWEEN 0 AND tables_total),
  rows_identical bigint NOT NULL DEFAULT 0 CHECK (rows_identical >= 0),
  rows_only_a bigint NOT NULL DEFAULT 0 CHECK (rows_only_a >= 0),
  rows_only_b bigint NOT NULL DEFAULT 0 CHECK (rows_only_b >= 0),
  rows_conflicting bigint NOT NULL DEFAULT 0 CHECK (rows_conflicting >= 0),
  -- rows the exchange wrote on each node (a dry run: would write)
  rows_to_a bigint NOT NULL DEFAULT 0 CHECK (rows_to_a >= 0),
  rows_to_b bigint NOT NULL DEFAULT 0 CHECK (rows_to_b >= 0),
  -- the merge points: the consistent points of the slots whose exported
  -- snapshots were compared, where the subscriptions start
  lsn_a pg_lsn,
  lsn_b pg_lsn,
  error text,
  hint text,
  -- refused (nothing changed), schema, concurrent (rows written on both
  -- nodes during the merge), quiesce, timeout, connection, error
  failure_kind text,
  job_id bigint,
  cancel_requested_at timestamptz,
  requested_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (node_a <> node_b),
  CHECK ((mode = 'analyze') = (strategy IS NULL)),
  CHECK (mode <> 'record' OR strategy = 'manual')
);

CREATE INDEX merge_runs_nodes ON steep_repl.merge_runs (node_a, node_b, merge_id DESC);

-- Per table of a run: what the comparison found, what the exchange wrote
-- and what the final verify found (verify: {status, rows_missing,
-- rows_extra, rows_different, rows_unsettled}). sample_keys: {only_a,
-- only_b, conflicting}, the first keys of each.
CREATE TABLE steep_repl.merge_tables (
  merge_id bigint NOT NULL REFERENCES steep_repl.merge_runs (merge_id) ON DELETE CASCADE,
  schema_name text NOT NULL,
  table_name text NOT NULL,
  status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'comparing', 'compared', 'exchanged', 'equal', 'differs', 'unsettled', 'failed')),
  rows_a bigint CHECK (rows_a >= 0),
  rows_b bigint CHECK (rows_b >= 0),
  rows_identical bigint NOT NULL DEFAULT 0 CHECK (rows_identical >= 0),
  rows_only_a bigint NOT NULL DEFAULT 0 CHECK (rows_only_a >= 0),
  rows_only_b bigint NOT NULL DEFAULT 0 CHECK (rows_only_b >= 0),
  rows_conflicting bigint NOT NULL DEFAULT 0 CHECK (rows_conflicting >= 0),
  -- conflicts each node's row won
  conflicts_won_a bigint NOT NULL DEFAULT 0 CHECK (conflicts_won_a >= 0),
  conflicts_won_b bigint NOT NULL DEFAULT 0 CHECK (conflicts_won_b >= 0),
  rows_to_a bigint NOT NULL DEFAULT 0 CHECK (rows_to_a >= 0),
  rows_to_b bigint NOT NULL DEFAULT 0 CHECK (rows_to_b >= 0),
  -- a losing row its node changed after the merge point: kept, its change
  -- replicates to the other node
  rows_changed_during bigint NOT NULL DEFAULT 0 CHECK (rows_changed_during >= 0),
  sample_keys jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(sample_keys) = 'object'),
  verify jsonb,
  note text,
  started_at timestamptz,
  finished_at timestamptz,
  PRIMARY KEY (merge_id, schema_name, table_name)
);

-- Conflicts of a manual merge, and rows an exchange could not write: kind
-- concurrent (written on the other node during the merge) or unique (a
-- unique constraint other than the primary key holds another row): the key, both rows as JSON and their row hashes
-- when recorded. The DBA fills resolution: a, b, or row with resolved_row
-- (the row both nodes get). A merge --apply uses a resolution only while
-- both rows are still the recorded ones.
CREATE TABLE steep_repl.merge_conflicts (
  merge_id bigint NOT NULL REFERENCES steep_repl.merge_runs (merge_id) ON DELETE CASCADE,
  schema_name text NOT NULL,
  table_name text NOT NULL,
  key jsonb NOT NULL CHECK (jsonb_typeof(key) = 'object'),
  kind text NOT NULL DEFAULT 'conflict' CHECK (kind IN ('conflict', 'concurrent', 'unique')),
  row_a jsonb,
  row_b jsonb,
  hash_a text,
  hash_b text,
  resolution text CHECK (resolution IN ('a', 'b', 'row')),
  resolved_row jsonb CHECK (resolved_row IS NULL OR jsonb_typeof(resolved_row) = 'object'),
  resolved_at timestamptz,
  PRIMARY KEY (merge_id, schema_name, table_name, key),
  CHECK (CASE WHEN resolution = 'row' THEN resolved_row IS NOT NULL ELSE resolved_row IS NULL END)
);

CREATE INDEX merge_conflicts_unresolved ON steep_repl.merge_conflicts (merge_id) WHERE resolution IS NULL;
