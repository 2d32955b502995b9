-- Run on the node that will be the source, first of two steps: records the
-- slot a later init of p_for_node will subscribe through (lsn NULL until
-- prepared_slot_created) and queues its expiry (task expire_prepared_slot
-- at expires_at). The caller then creates the slot as a statement of its
-- own: pg_create_logical_replication_slot inside a PL/pgSQL function fails
-- now and then on PostgreSQL 18 ("snapshot reference ... is not owned by
-- resource owner TopTransaction"). The publication must exist already:
-- pgoutput decodes a change with the publications as they were when it
-- was written. Called again for a slot it recorded, it returns that row.
CREATE OR REPLACE FUNCTION steep_repl.prepare_slot(p_slot_name text, p_for_node text, p_purpose text, p_publication text, p_ttl interval)
RETURNS steep_repl.init_slots LANGUAGE plpgsql AS $$
DECLARE
  v_row steep_repl.init_slots;
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
  INSERT INTO steep_repl.init_slots (slot_name, for_node, purpose, publication, expires_at)
  VALUES (p_slot_name, p_for_node, p_purpose, p_publication, now() + p_ttl)
  RETURNING * INTO v_row;
  PERFORM graphile_worker.add_job('expire_prepared_slot', json_build_object('slot_name', p_slot_name),
                                  run_at => v_row.expires_at, job_key => 'prepared_slot:' || p_slot_name, max_attempts => 5);
  RETURN v_row;
END $$;
