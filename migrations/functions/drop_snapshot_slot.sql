-- What a snapshot holds on this server goes: its slot (the session that
-- holds it, the generate's snapshot holder, is ended first) and its
-- publication, unless an apply still streams through the publication (an
-- init_slots row of purpose two-phase names it: the last of those drops it
-- when it goes). Returns {slot_dropped, publication_dropped, applies_in_flight}.
CREATE OR REPLACE FUNCTION steep_repl.drop_snapshot_slot(p_snapshot_id text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_row steep_repl.snapshots := steep_repl.get_snapshot(p_snapshot_id);
  v_slot record;
  v_applies jsonb;
  v_publication_dropped boolean := false;
BEGIN
  SELECT s.slot_name, s.active_pid INTO v_slot
    FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = v_row.slot_name AND s.database = current_database();
  IF v_slot.active_pid IS NOT NULL THEN
    PERFORM pg_catalog.pg_terminate_backend(v_slot.active_pid, 5000);
  END IF;
  IF v_slot.slot_name IS NOT NULL THEN
    PERFORM pg_catalog.pg_drop_replication_slot(v_row.slot_name);
  END IF;
  SELECT coalesce(jsonb_agg(jsonb_build_object('slot_name', i.slot_name, 'for_node', i.for_node) ORDER BY i.created_at), '[]')
    INTO v_applies
    FROM steep_repl.init_slots i WHERE i.purpose = 'two-phase' AND i.publication = v_row.publication;
  IF jsonb_array_length(v_applies) = 0 AND EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = v_row.publication) THEN
    EXECUTE format('DROP PUBLICATION %I', v_row.publication);
    v_publication_dropped := true;
  END IF;
  RETURN jsonb_build_object('slot_dropped', v_slot.slot_name IS NOT NULL, 'publication_dropped', v_publication_dropped,
                            'applies_in_flight', v_applies);
END $$;
