--! Previous: sha1:e9c012ad24c89ef3647b0e3f9a841ddd63e2f3a5
--! Hash: sha1:c422b3a182b96fb57f21c09e13ddd857794dee10
--! Message: two-phase snapshots

-- Two-phase snapshots (SPEC 4.3, issue 11): snapshot generate writes the
-- source's tables at one exported snapshot to files; snapshot apply (the
-- init method two-phase) loads them on a target and streams from a copy of
-- the snapshot's slot. Tables and data only; the functions live in
-- migrations/functions.

-- One row per snapshot generated on this node (the source). The slot and
-- the publication are made by the generate (the publication first:
-- pgoutput decodes a change with the publications as they were when it
-- was written) and live until the snapshot expires or is deleted; every
-- apply streams from a copy of the slot (pg_copy_logical_replication_slot),
-- so one snapshot serves any number of targets while it lives.
CREATE TABLE steep_repl.snapshots (
  snapshot_id text PRIMARY KEY CHECK (snapshot_id ~ '^[a-z0-9_]{1,40}$'),
  -- the local node when it was generated
  source_node_id text NOT NULL,
  -- where the source's agent writes the files, on its own machine
  output_dir text NOT NULL CHECK (output_dir ~ '^/'),
  -- generating -> ready; failed (the generate could not finish: its slot
  -- and publication are gone); expired (at expires_at) and deleted (snapshot
  -- delete): the slot is gone, the row stays so an apply can say why
  state text NOT NULL DEFAULT 'generating' CHECK (state IN ('generating', 'ready', 'failed', 'expired', 'deleted')),
  compression text NOT NULL CHECK (compression IN ('none', 'gzip', 'zstd', 'lz4')),
  parallel integer NOT NULL CHECK (parallel BETWEEN 1 AND 16),
  split_tables_larger_than bigint NOT NULL CHECK (split_tables_larger_than > 0),
  max_parts integer NOT NULL CHECK (max_parts BETWEEN 1 AND 1024),
  slot_name text NOT NULL UNIQUE CHECK (slot_name ~ '^[a-z0-9_]{1,63}$'),
  publication text NOT NULL UNIQUE,
  -- the tables the publication was made for and the parts read,
  -- [{schema_name, table_name}] (set when the parts are planned)
  tables jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(tables) = 'array'),
  -- the slot's consistent point (where every apply's stream starts) and the
  -- exported snapshot the parts are read on (cleared when the writing is over)
  consistent_lsn pg_lsn,
  snapshot_name text,
  -- sha256 of manifest.json's checksummed content, once written
  manifest_checksum text CHECK (manifest_checksum ~ '^[0-9a-f]{64}$'),
  -- while generating: rates and workers, as init_progress has them
  rows_per_second numeric,
  bytes_per_second numeric,
  eta_seconds numeric,
  workers_active integer NOT NULL DEFAULT 0,
  error text,
  hint text,
  -- the slot at risk (retained WAL over the threshold, wal_status
  -- unreserved or lost), last warned of
  wal_warned_at timestamptz,
  job_id bigint,
  created_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  expires_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (expires_at > created_at)
);

-- One live snapshot per directory: a second generate into it would mix files.
CREATE UNIQUE INDEX snapshots_live_output_dir ON steep_repl.snapshots (output_dir) WHERE state IN ('generating', 'ready');

COMMENT ON TABLE steep_repl.snapshots IS
  'Two-phase snapshots generated on this node: their files, slot, publication, state and expiry';

-- The parts a generate writes, one file each: what is read (as
-- init_parts: a leaf of a planned table, a range of it), where it stands
-- and, once done, what the file holds. A part is written to a temporary
-- file, synced and renamed before it is marked done, so a done part's file
-- is whole; a part cut off is written again.
CREATE TABLE steep_repl.snapshot_parts (
  snapshot_id text NOT NULL REFERENCES steep_repl.snapshots (snapshot_id) ON DELETE CASCADE,
  schema_name text NOT NULL,
  table_name text NOT NULL,
  leaf_schema text NOT NULL,
  leaf_name text NOT NULL,
  part_no integer NOT NULL CHECK (part_no >= 1),
  part_count integer NOT NULL CHECK (part_no <= part_count),
  split text NOT NULL CHECK (split IN ('whole', 'key', 'ctid')),
  key_column text CHECK ((split = 'key') = (key_column IS NOT NULL)),
  range_start numeric,
  range_end numeric,
  state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'writing', 'done')),
  -- inside the snapshot directory: data/<name>, no other path
  file_name text CHECK (file_name ~ '^data/[A-Za-z0-9][A-Za-z0-9._-]*$'),
  bytes_estimate bigint NOT NULL CHECK (bytes_estimate >= 0),
  rows_estimate bigint NOT NULL CHECK (rows_estimate >= 0),
  -- once done: the COPY stream's rows and bytes, the file's bytes and sha256
  rows bigint CHECK (rows >= 0),
  raw_bytes bigint CHECK (raw_bytes >= 0),
  stored_bytes bigint CHECK (stored_bytes >= 0),
  sha256 text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  -- while writing: rows and bytes (of the COPY stream) so far, the worker;
  -- writes counts the attempts
  rows_written bigint NOT NULL DEFAULT 0 CHECK (rows_written >= 0),
  bytes_written bigint NOT NULL DEFAULT 0 CHECK (bytes_written >= 0),
  writes integer NOT NULL DEFAULT 0 CHECK (writes >= 0),
  worker integer,
  started_at timestamptz,
  finished_at timestamptz,
  PRIMARY KEY (snapshot_id, leaf_schema, leaf_name, part_no),
  UNIQUE (snapshot_id, file_name),
  CHECK (state <> 'done' OR (file_name IS NOT NULL AND rows IS NOT NULL AND raw_bytes IS NOT NULL
                              AND stored_bytes IS NOT NULL AND sha256 IS NOT NULL))
);

COMMENT ON TABLE steep_repl.snapshot_parts IS
  'Parts of a two-phase snapshot: one range of one source relation each, written to one file on the exported snapshot';

-- An option may be text matched by a pattern (two-phase: the snapshot, an
-- id or an absolute directory), said in words by expected (the error for a
-- value that does not match quotes it), and a method may need an option given.
ALTER TABLE steep_repl.init_option_specs DROP CONSTRAINT init_option_specs_kind_check;
ALTER TABLE steep_repl.init_option_specs
  ADD CONSTRAINT init_option_specs_kind_check CHECK (kind IN ('boolean', 'integer', 'choice', 'duration', 'bytes', 'text')),
  ADD COLUMN pattern text CHECK ((kind = 'text') = (pattern IS NOT NULL)),
  ADD COLUMN expected text CHECK ((kind = 'text') = (expected IS NOT NULL));
ALTER TABLE steep_repl.init_methods ADD COLUMN required text[] NOT NULL DEFAULT '{}' CHECK (required <@ options);

INSERT INTO steep_repl.init_option_specs (option, kind, pattern, expected, description) VALUES
  ('snapshot', 'text', '^(/.*|[a-z0-9_]{1,40})$', 'a snapshot id (snapshot list) or the absolute path of its directory',
   'two-phase: the snapshot to load, its id (snapshot list) or the absolute path of its directory');

UPDATE steep_repl.init_methods
   SET available = true,
       options = ARRAY['snapshot', 'schema_sync', 'force', 'resume', 'timeout', 'lag_threshold_bytes', 'parallel', 'reverse_slot_ttl'],
       required = ARRAY['snapshot']
 WHERE method = 'two-phase';
UPDATE steep_repl.init_option_specs
   SET description = 'copy workers; snapshot: table-sync workers (sets max_sync_workers_per_subscription on the target server); direct: the agent''s copy sessions (default 4); two-phase: the agent''s load sessions (default 4)'
 WHERE option = 'parallel';

-- == apply ==

-- What the two-phase method keeps to resume and to switch its stream
-- (agent/tasks/init_two_phase.ts): the snapshot it loads, and the first
-- transaction id not yet started when the pair's publication existed
-- (pg_snapshot_xmax, read right after the plan made it). pgoutput resolves
-- publication names with the catalog as of each change it decodes, so the
-- subscription streams the snapshot's publication until every transaction
-- below that id has ended and the slot confirmed a later position; then it
-- switches to the pair's.
ALTER TABLE steep_repl.init_method_state
  ADD COLUMN snapshot_id text,
  ADD COLUMN publication_xmax xid8;
