-- The expiry of one prepared slot, run by the node's agent at expires_at
-- (task expire_prepared_slot), or by a cancel (expires_at set to now):
-- drops the slot (unless a subscription streams from it: then it is in use
-- and only the row goes) and its publication when no other prepared slot
-- names it and no generating or ready snapshot owns it (a two-phase row
-- names its snapshot's), deletes the row and emits slot.expired. A row
-- whose expires_at was moved later (UPDATE steep_repl.init_slots SET
-- expires_at = ...) is queued again for then. A manual prepare's slot held
-- by node prepare's snapshot holder is not in use: the holder is ended and
-- the slot and publication go (node complete would refuse the expired
-- prepare anyway).
-- Returns what it did: gone, rescheduled, in_use, expired.
CREATE OR REPLACE FUNCTION steep_repl.expire_prepared_slot(p_slot_name text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_row steep_repl.init_slots;
  v_slot record;
  v_outcome text := 'expired';
  v_publication_dropped boolean := false;
BEGIN
  SELECT * INTO v_row FROM steep_repl.init_slots WHERE slot_name = p_slot_name;
  IF NOT FOUND THEN
    RETURN 'gone';
  END IF;
  IF v_row.expires_at > now() THEN
    PERFORM graphile_worker.add_job('expire_prepared_slot', json_build_object('slot_name', p_slot_name),
                                    run_at => v_row.expires_at, job_key => 'prepared_slot:' || p_slot_name, max_attempts => 5);
    RETURN 'rescheduled';
  END IF;
  IF v_row.purpose = 'manual' THEN
    PERFORM steep_repl.terminate_prepare_holder(p_slot_name);
  END IF;
  SELECT s.slot_name, s.active, s.restart_lsn INTO v_slot
    FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = p_slot_name AND s.database = current_database();
  IF v_slot.active THEN
    v_outcome := 'in_use';
  ELSIF v_slot.slot_name IS NOT NULL THEN
    PERFORM pg_catalog.pg_drop_replication_slot(p_slot_name);
  END IF;
  DELETE FROM steep_repl.init_slots WHERE slot_name = p_slot_name;
  -- a snapshot's publication (a two-phase row names it) stays while the
  -- snapshot lives: its expiry or delete drops it
  IF v_outcome = 'expired' THEN
    v_publication_dropped := steep_repl.release_slot_publication(v_row.publication);
  END IF;
  PERFORM steep_repl.emit_event('slot.expired', steep_repl.local_node_id(), jsonb_build_object(
    'slot_name', p_slot_name, 'for_node', v_row.for_node, 'purpose', v_row.purpose, 'outcome', v_outcome,
    'publication_dropped', v_publication_dropped,
    'created_at', v_row.created_at, 'expires_at', v_row.expires_at));
  RETURN v_outcome;
END $$;
