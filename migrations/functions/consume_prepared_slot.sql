-- Run on the source once an init's subscription streams through a prepared
-- slot: the subscription owns the slot from now on (dropping it drops the
-- slot), so the row and its expiry go. A two-phase row (the slot copied
-- from a snapshot's) names the snapshot's publication, kept while an apply
-- streams through it: the last such row going drops it, unless the
-- snapshot is still generating or ready (then the snapshot's expiry or
-- delete drops it). A manual prepare's publication is the pair's own,
-- which the subscription goes on streaming: it stays. Returns whether
-- there was a row.
CREATE OR REPLACE FUNCTION steep_repl.consume_prepared_slot(p_slot_name text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  v_row steep_repl.init_slots;
  v_publication_dropped boolean := false;
BEGIN
  DELETE FROM steep_repl.init_slots WHERE slot_name = p_slot_name RETURNING * INTO v_row;
  IF v_row.slot_name IS NULL THEN
    RETURN false;
  END IF;
  PERFORM graphile_worker.remove_job('prepared_slot:' || p_slot_name);
  IF v_row.purpose = 'two-phase' THEN
    v_publication_dropped := steep_repl.release_slot_publication(v_row.publication);
  END IF;
  PERFORM steep_repl.emit_event('slot.consumed', steep_repl.local_node_id(), jsonb_build_object(
    'slot_name', p_slot_name, 'for_node', v_row.for_node, 'purpose', v_row.purpose,
    'publication', v_row.publication, 'publication_dropped', v_publication_dropped));
  RETURN true;
END $$;
