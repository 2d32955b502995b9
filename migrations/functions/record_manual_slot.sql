-- Run on the source right after the slot of prepare_manual_slot was made
-- (node prepare, second step): its consistent point, for pg_dump the
-- snapshot exported with it, and the source's timeline now (a restored base
-- backup must branch off this one). The row's UPDATE (prepared_slot_created)
-- writes WAL after the slot's point, so a copy's recovery can reach its
-- stop point even on an idle source.
CREATE OR REPLACE FUNCTION steep_repl.record_manual_slot(p_slot_name text, p_lsn pg_lsn, p_snapshot_name text DEFAULT NULL)
RETURNS steep_repl.init_slots LANGUAGE plpgsql AS $$
DECLARE
  v_row steep_repl.init_slots;
BEGIN
  SELECT * INTO v_row FROM steep_repl.init_slots WHERE slot_name = p_slot_name FOR UPDATE;
  IF FOUND AND v_row.purpose <> 'manual' THEN
    RAISE EXCEPTION 'slot % is prepared for a % init, not a manual one', quote_ident(p_slot_name), v_row.purpose
      USING ERRCODE = 'SR004';
  END IF;
  IF p_lsn IS NULL THEN
    RAISE EXCEPTION 'the slot''s consistent LSN is needed (what creating the slot returned)' USING ERRCODE = 'SR004';
  END IF;
  IF v_row.backup = 'pg_dump' AND p_snapshot_name IS NULL THEN
    RAISE EXCEPTION 'a pg_dump prepare needs the snapshot exported with slot %', quote_ident(p_slot_name)
      USING ERRCODE = 'SR004', HINT = 'create the slot on a replication connection: CREATE_REPLICATION_SLOT ... LOGICAL pgoutput (SNAPSHOT ''export'')';
  END IF;
  IF v_row.backup = 'pg_basebackup' AND p_snapshot_name IS NOT NULL THEN
    RAISE EXCEPTION 'a pg_basebackup prepare reads no snapshot (got %)', quote_literal(p_snapshot_name) USING ERRCODE = 'SR004';
  END IF;
  IF p_snapshot_name !~ '^[0-9A-F]+(-[0-9A-F]+)+$' THEN
    RAISE EXCEPTION 'snapshot name % is not one PostgreSQL exports (such as 00000003-0000001B-1)', quote_literal(p_snapshot_name)
      USING ERRCODE = 'SR004';
  END IF;
  -- refuses a missing slot or row
  v_row := steep_repl.prepared_slot_created(p_slot_name, p_lsn);
  UPDATE steep_repl.init_slots
     SET snapshot_name = p_snapshot_name,
         timeline = ('x' || left(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 8))::bit(32)::integer
   WHERE slot_name = p_slot_name
  RETURNING * INTO v_row;
  RETURN v_row;
END $$;
