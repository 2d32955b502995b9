-- Second step of preparing a slot (after prepare_slot and the slot's own
-- CREATE): records the slot's consistent point and announces slot.prepared.
-- Refuses a slot that does not exist or whose row is missing.
CREATE OR REPLACE FUNCTION steep_repl.prepared_slot_created(p_slot_name text, p_lsn pg_lsn)
RETURNS steep_repl.init_slots LANGUAGE plpgsql AS $$
DECLARE
  v_row steep_repl.init_slots;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = p_slot_name AND database = current_database()) THEN
    RAISE EXCEPTION 'there is no replication slot % in this database', quote_ident(p_slot_name) USING ERRCODE = 'SR004';
  END IF;
  UPDATE steep_repl.init_slots SET lsn = p_lsn WHERE slot_name = p_slot_name RETURNING * INTO v_row;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'slot % is not a prepared slot (no row in steep_repl.init_slots)', quote_ident(p_slot_name) USING ERRCODE = 'SR004';
  END IF;
  PERFORM steep_repl.emit_event('slot.prepared', steep_repl.local_node_id(), jsonb_build_object(
    'slot_name', p_slot_name, 'for_node', v_row.for_node, 'purpose', v_row.purpose, 'publication', v_row.publication,
    'lsn', p_lsn::text, 'expires_at', v_row.expires_at));
  RETURN v_row;
END $$;
