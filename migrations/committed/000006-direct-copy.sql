--! Previous: sha1:e02a52ddd692387ff7eee4e1e1e28915ab352cdb
--! Hash: sha1:e9c012ad24c89ef3647b0e3f9a841ddd63e2f3a5
--! Message: direct copy

-- The direct method (SPEC 4.3): steep-repl's own copy engine on one
-- exported snapshot, tables split into parts copied in parallel. Tables and
-- data only; the functions live in migrations/functions.

-- One row per part of a direct init: what is read from the source (a leaf
-- of the planned table, a range of it), where it stands, what it copied.
-- Progress, resume and the live view read it. A part is copied in one
-- transaction on the target together with its move to done, so a part cut
-- off mid-COPY leaves no rows; copies counts the times a copy of it began.
CREATE TABLE steep_repl.init_parts (
  node_id text NOT NULL REFERENCES steep_repl.init_progress (node_id) ON DELETE CASCADE,
  -- the planned (published) table; a partitioned table's root
  schema_name text NOT NULL,
  table_name text NOT NULL,
  -- the relation read on the source: the table itself, or one leaf partition
  leaf_schema text NOT NULL,
  leaf_name text NOT NULL,
  part_no integer NOT NULL CHECK (part_no >= 1),
  part_count integer NOT NULL CHECK (part_no <= part_count),
  -- whole: the leaf in one part; key: a range of its integer primary key
  -- (key_column); ctid: a range of its heap blocks
  split text NOT NULL CHECK (split IN ('whole', 'key', 'ctid')),
  key_column text CHECK ((split = 'key') = (key_column IS NOT NULL)),
  -- [range_start, range_end): key values or block numbers; NULL is open
  range_start numeric,
  range_end numeric,
  -- pending -> copying -> done on the snapshot. After the snapshot was lost,
  -- the parts of a table not complete on it go to resync (emptied; PostgreSQL's
  -- table sync copies the table again) and then resynced.
  state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'copying', 'done', 'resync', 'resynced')),
  -- heap plus TOAST and rows (reltuples) of the leaf at the plan, shared
  -- out over its parts: the queue's order and the part's percentage
  bytes_estimate bigint NOT NULL CHECK (bytes_estimate >= 0),
  rows_estimate bigint NOT NULL CHECK (rows_estimate >= 0),
  rows_copied bigint NOT NULL DEFAULT 0 CHECK (rows_copied >= 0),
  bytes_copied bigint NOT NULL DEFAULT 0 CHECK (bytes_copied >= 0),
  copies integer NOT NULL DEFAULT 0 CHECK (copies >= 0),
  -- the agent's copy worker (1..parallel) while copying
  worker integer,
  started_at timestamptz,
  finished_at timestamptz,
  PRIMARY KEY (node_id, leaf_schema, leaf_name, part_no),
  FOREIGN KEY (node_id, schema_name, table_name)
    REFERENCES steep_repl.init_table_progress (node_id, schema_name, table_name) ON DELETE CASCADE
);

COMMENT ON TABLE steep_repl.init_parts IS
  'Parts of a direct initialization: one range of one source relation each, copied on the exported snapshot';

-- The exported snapshot the parts are read on and the slot's consistent
-- point, where the subscription starts. snapshot_name is cleared when the
-- copy on it is over (the process holding it then lets it go).
ALTER TABLE steep_repl.init_method_state
  ADD COLUMN snapshot_name text,
  ADD COLUMN consistent_lsn pg_lsn;

-- direct splits tables above 1GB into at most 32 parts unless asked otherwise.
UPDATE steep_repl.init_option_specs SET default_value = '1073741824' WHERE option = 'split_tables_larger_than';
UPDATE steep_repl.init_option_specs SET default_value = '32' WHERE option = 'max_parts';
UPDATE steep_repl.init_option_specs
   SET description = 'copy workers; snapshot: table-sync workers (sets max_sync_workers_per_subscription on the target server); direct: the agent''s copy sessions (default 4)'
 WHERE option = 'parallel';
UPDATE steep_repl.init_methods SET available = true WHERE method = 'direct';
