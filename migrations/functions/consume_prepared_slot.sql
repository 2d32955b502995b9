-- Run on the source once an init's subscription streams through a prepared
-- slot: the subscription owns the slot from now on (dropping it drops the
-- slot), so the row and its expiry go. Returns whether there was a row.
CREATE OR REPLACE FUNCTION steep_repl.consume_prepared_slot(p_slot_name text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  v_row steep_repl.init_slots;
BEGIN
  DELETE FROM steep_repl.init_slots WHERE slot_name = p_slot_name RETURNING * INTO v_row;
  IF v_row.slot_name IS NULL THEN
    RETURN false;
  END IF;
  PERFORM graphile_worker.remove_job('prepared_slot:' || p_slot_name);
  PERFORM steep_repl.emit_event('slot.consumed', steep_repl.local_node_id(), jsonb_build_object(
    'slot_name', p_slot_name, 'for_node', v_row.for_node, 'purpose', v_row.purpose));
  RETURN true;
END $$;
