-- Run on the source: the manual prepare for p_target goes now, before any
-- node complete used it. Its snapshot holder (node prepare's replication
-- connection) is ended, the slot and the publication are dropped, the row
-- and its expiry go; event slot.cancelled. A slot a subscription streams
-- from already is the init's: refused (cancel the init on the target).
CREATE OR REPLACE FUNCTION steep_repl.cancel_manual_prepare(p_target text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_row steep_repl.init_slots;
  v_holder integer;
  v_slot record;
  v_publication_dropped boolean;
BEGIN
  SELECT * INTO v_row FROM steep_repl.init_slots WHERE for_node = p_target AND purpose = 'manual' FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'this database holds no manual prepare for node %', coalesce(quote_ident(p_target), 'NULL')
      USING ERRCODE = 'SR003',
            HINT = coalesce('its prepared slots are for: ' || (SELECT string_agg(DISTINCT quote_ident(for_node) || ' (' || purpose || ')', ', ')
                                                                  FROM steep_repl.init_slots),
                            'it holds no prepared slot (SELECT * FROM steep_repl.prepared_slots())');
  END IF;
  SELECT s.active, s.active_pid, a.application_name INTO v_slot
    FROM pg_catalog.pg_replication_slots s LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = s.active_pid
   WHERE s.slot_name = v_row.slot_name;
  IF v_slot.active AND v_slot.application_name IS DISTINCT FROM 'steep-repl prepare' THEN
    RAISE EXCEPTION 'slot % is in use by % (pid %)', quote_ident(v_row.slot_name),
      coalesce(quote_literal(v_slot.application_name), 'a session'), v_slot.active_pid
      USING ERRCODE = 'SR006',
            HINT = format('node complete subscribed through it: cancel the init on the target (steep-repl node cancel %s)',
                          steep_repl.shell_word(p_target));
  END IF;
  v_holder := steep_repl.terminate_prepare_holder(v_row.slot_name);
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = v_row.slot_name) THEN
    PERFORM pg_catalog.pg_drop_replication_slot(v_row.slot_name);
  END IF;
  DELETE FROM steep_repl.init_slots WHERE slot_name = v_row.slot_name;
  PERFORM graphile_worker.remove_job('prepared_slot:' || v_row.slot_name);
  v_publication_dropped := steep_repl.release_slot_publication(v_row.publication);
  PERFORM steep_repl.emit_event('slot.cancelled', steep_repl.local_node_id(), jsonb_build_object(
    'slot_name', v_row.slot_name, 'for_node', v_row.for_node, 'backup', v_row.backup, 'lsn', v_row.lsn::text,
    'holder_terminated', v_holder, 'publication', v_row.publication, 'publication_dropped', v_publication_dropped));
  RETURN jsonb_build_object('slot_name', v_row.slot_name, 'for_node', v_row.for_node, 'backup', v_row.backup,
                            'slot_dropped', v_slot.active IS NOT NULL, 'holder_terminated', v_holder,
                            'publication', v_row.publication, 'publication_dropped', v_publication_dropped);
END $$;
