-- Run on the node that will be the source: creates the logical slot
-- (pgoutput) a later init of p_for_node subscribes through, records it in
-- init_slots and queues its expiry (task expire_prepared_slot at
-- expires_at). The publication must exist already: pgoutput decodes a
-- change with the publications as they were when it was written. Run
-- outside a transaction that wrote anything (a slot needs that). Called
-- again for a slot it recorded, it returns that row (a resumed init).
CREATE OR REPLACE FUNCTION steep_repl.prepare_slot(p_slot_name text, p_for_node text, p_purpose text, p_publication text, p_ttl interval)
RETURNS steep_repl.init_slots LANGUAGE plpgsql AS $$
DECLARE
  v_row steep_repl.init_slots;
  v_lsn pg_lsn;
BEGIN
  SELECT * INTO v_row FROM steep_repl.init_slots WHERE slot_name = p_slot_name;
  IF FOUND THEN
    RETURN v_row;
  END IF;
  IF p_ttl IS NULL OR p_ttl <= interval '0' THEN
    RAISE EXCEPTION 'a prepared slot needs a positive time to live, not %', quote_nullable(p_ttl::text) USING ERRCODE = 'SR004';
  END IF;
  IF p_publication IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = p_publication) THEN
    RAISE EXCEPTION 'publication % does not exist; it must exist before the slot', quote_ident(p_publication)
      USING ERRCODE = 'SR004';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = p_slot_name) THEN
    RAISE EXCEPTION 'a replication slot named % exists already and is not a prepared one', quote_ident(p_slot_name)
      USING ERRCODE = 'SR004', HINT = 'drop it (SELECT pg_drop_replication_slot(...)) if nothing uses it';
  END IF;
  SELECT s.lsn INTO v_lsn FROM pg_catalog.pg_create_logical_replication_slot(p_slot_name, 'pgoutput') s;
  INSERT INTO steep_repl.init_slots (slot_name, for_node, purpose, publication, lsn, expires_at)
  VALUES (p_slot_name, p_for_node, p_purpose, p_publication, v_lsn, now() + p_ttl)
  RETURNING * INTO v_row;
  PERFORM graphile_worker.add_job('expire_prepared_slot', json_build_object('slot_name', p_slot_name),
                                  run_at => v_row.expires_at, job_key => 'prepared_slot:' || p_slot_name, max_attempts => 5);
  PERFORM steep_repl.emit_event('slot.prepared', steep_repl.local_node_id(), jsonb_build_object(
    'slot_name', p_slot_name, 'for_node', p_for_node, 'purpose', p_purpose, 'publication', p_publication,
    'lsn', v_lsn::text, 'expires_at', v_row.expires_at));
  RETURN v_row;
END $$;
