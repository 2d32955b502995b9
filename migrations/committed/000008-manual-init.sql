--! Previous: sha1:c422b3a182b96fb57f21c09e13ddd857794dee10
--! Hash: sha1:289f5202f4f2015b0f3854902ac6a67cac3129fd
--! Message: manual init

-- Manual init (SPEC 4.4, issue 12): the DBA copies the source with their
-- own pg_dump or pg_basebackup taken at a prepared slot's exact point;
-- steep-repl prepares the slot (node prepare) and subscribes from it
-- (node complete). Tables and data only; the functions live in
-- migrations/functions.

-- A manual prepare's slot: which backup it is for, the snapshot pg_dump
-- reads (exported by the replication connection that made the slot and
-- holds it), and the source's timeline when the slot was made (a restored
-- base backup must have branched off exactly that one).
ALTER TABLE steep_repl.init_slots
  ADD COLUMN backup text CHECK (backup IN ('pg_dump', 'pg_basebackup')),
  ADD COLUMN snapshot_name text,
  ADD COLUMN timeline integer CHECK (timeline >= 1),
  ADD CONSTRAINT init_slots_backup_manual_check CHECK (backup IS NULL OR purpose = 'manual');

-- What a manual init keeps on the target: the backup, the prepared slot's
-- expiry, when node complete asked for the subscription, the handover
-- point it used and, for a base backup, where the copy's recovery ended
-- (steep_repl.recovery_end() read on the copy at complete).
ALTER TABLE steep_repl.init_method_state
  ADD COLUMN backup text CHECK (backup IN ('pg_dump', 'pg_basebackup')),
  ADD COLUMN expires_at timestamptz,
  ADD COLUMN complete_requested_at timestamptz,
  ADD COLUMN source_lsn pg_lsn,
  ADD COLUMN recovery_end jsonb CHECK (jsonb_typeof(recovery_end) = 'object');

INSERT INTO steep_repl.init_option_specs (option, kind, min_value, max_value, choices, default_value, pattern, expected, description) VALUES
  ('backup', 'choice', NULL, NULL, ARRAY['pg_dump', 'pg_basebackup'], 'null', NULL, NULL,
   'manual: the DBA''s copy of the source, a pg_dump taken on the prepared snapshot or a pg_basebackup restored to the slot''s LSN'),
  ('expires', 'duration', 60, 31536000, NULL, '604800', NULL, NULL,
   'manual: the prepared slot is dropped this long after node prepare unless node complete used it (seconds or an interval, at most a year; default 7 days)'),
  ('source_lsn', 'text', NULL, NULL, NULL, 'null', '^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$', 'an LSN such as 16/B374D848',
   'manual: the source''s LSN the backup was taken at, when not the prepared slot''s; the subscription starts there');

UPDATE steep_repl.init_methods
   SET available = true,
       options = ARRAY['schema_sync', 'timeout', 'lag_threshold_bytes', 'reverse_slot_ttl', 'backup', 'expires', 'source_lsn'],
       required = ARRAY['backup']
 WHERE method = 'manual';

-- prepared_slots() tells a manual prepare's backup, snapshot and timeline
-- too: a new result type, so it and the view reading it are made again
-- (migrations/functions, migrations/views; a fresh install makes neither
-- before its routines).
DROP VIEW IF EXISTS steep_repl.node_overview;
DROP FUNCTION IF EXISTS steep_repl.prepared_slots();
