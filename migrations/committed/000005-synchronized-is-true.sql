--! Previous: sha1:0e760c225b5f689fe7da6fcad3fb349083142660
--! Hash: sha1:e02a52ddd692387ff7eee4e1e1e28915ab352cdb
--! Message: synchronized is true

-- What it takes for SYNCHRONIZED to be a checked fact (issue 9): the slots
-- a node prepares for a later init, how each init subscribes, and what it
-- changed on a server that it must put back. Tables and drops only; the
-- functions live in migrations/functions.

-- == topology: prepared slots, origin (the reverse of a pair, cascades) ==

-- Slots a node holds for a later init that will subscribe through them
-- (SPEC 4.4). 'reverse': made when the node became synchronized from
-- for_node, so for_node's own init from this node later starts exactly
-- there (copy_data = false) and carries every row written here since.
-- The slot retains WAL until it is used or expires; the node's agent drops
-- it at expires_at (task expire_prepared_slot). An init that subscribes
-- through it deletes the row: the subscription owns the slot from then on.
CREATE TABLE steep_repl.init_slots (
  slot_name text PRIMARY KEY CHECK (slot_name ~ '^[a-z0-9_]{1,63}$'),
  -- the node whose init will subscribe through it
  for_node text NOT NULL,
  purpose text NOT NULL CHECK (purpose IN ('reverse', 'manual', 'two-phase')),
  -- the publication made for it (before the slot: pgoutput decodes with
  -- the publications as they were when a change was written)
  publication text,
  -- the slot's consistent point: a subscription from it starts here; NULL
  -- while the slot is being made (the row comes first, so a run killed in
  -- between finds and finishes it, and the expiry covers it from the start)
  lsn pg_lsn,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);

-- How long the slot a node prepares for the reverse direction lives once it
-- is synchronized: the WAL it keeps is the price of a reverse init that
-- copies nothing. 0 prepares none (a one-way replica). Every method ends
-- synchronized, so every method takes it.
INSERT INTO steep_repl.init_option_specs (option, kind, min_value, max_value, choices, default_value, description) VALUES
  ('reverse_slot_ttl', 'duration', 0, 31536000, NULL, '86400',
   'once synchronized, keep a slot for the reverse direction this long (seconds or an interval, at most a year; 0: none)');
UPDATE steep_repl.init_methods SET options = options || 'reverse_slot_ttl'::text;

-- How the init subscribed: origin none (only the source's own changes) or
-- any (a cascade: what the source received from its own sources too); NULL
-- on a server without the option (PostgreSQL 15: everything is sent). And
-- the prepared slot a reverse init subscribes through (init_slots).
ALTER TABLE steep_repl.init_method_state
  ADD COLUMN origin text CHECK (origin IN ('none', 'any')),
  ADD COLUMN prepared_slot text;

-- == what exists and what an init changed ==

-- What an init must know to tell the truth about what exists and to put
-- back what it changed: the publication and its tables as the plan made
-- them (by oid, so a rename on the source is named old -> new), and the
-- target's max_sync_workers_per_subscription before --parallel changed it.
ALTER TABLE steep_repl.init_method_state
  -- {oid, tables: [{relid, schema_name, table_name}]} on the source
  ADD COLUMN source_publication jsonb,
  -- NULL: the init changed nothing
  ADD COLUMN sync_workers_before integer,
  -- true: that value was itself set by ALTER SYSTEM (restored by setting it
  -- again), false: it came from postgresql.conf or the default (RESET)
  ADD COLUMN sync_workers_before_altered boolean;

-- == schema truth ==

-- Relations of the source logical replication cannot carry (unlogged
-- tables, foreign tables, materialized views, partitioned tables with an
-- unlogged or foreign partition) that an init in mode auto or manual went
-- ahead without: [{schema_name, table_name, label, reason}], recorded by
-- the schema step, shown by init_status and the init.completed event.
ALTER TABLE steep_repl.init_progress ADD COLUMN not_replicated jsonb NOT NULL DEFAULT '[]';
