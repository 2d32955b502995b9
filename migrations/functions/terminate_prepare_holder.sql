-- A manual prepare's slot is held (with its exported snapshot, for pg_dump)
-- by node prepare's replication connection, application_name
-- 'steep-repl prepare'. Cancel and expiry end that walsender and wait until
-- the slot is free, so it can be dropped. A slot held by anything else (a
-- subscription streaming from it) is not touched: NULL, as for a free slot.
-- Returns the pid ended.
CREATE OR REPLACE FUNCTION steep_repl.terminate_prepare_holder(p_slot_name text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_pid integer;
  v_deadline timestamptz := clock_timestamp() + interval '10 seconds';
BEGIN
  SELECT s.active_pid INTO v_pid
    FROM pg_catalog.pg_replication_slots s JOIN pg_catalog.pg_stat_activity a ON a.pid = s.active_pid
   WHERE s.slot_name = p_slot_name AND s.active AND a.application_name = 'steep-repl prepare';
  IF v_pid IS NULL THEN
    RETURN NULL;
  END IF;
  -- waits up to 5 s for the process to exit; it frees the slot on the way out
  PERFORM pg_catalog.pg_terminate_backend(v_pid, 5000);
  WHILE EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = p_slot_name AND active_pid = v_pid) LOOP
    IF clock_timestamp() > v_deadline THEN
      RAISE EXCEPTION 'the snapshot holder of slot % (pid %) did not end within 10 seconds', quote_ident(p_slot_name), v_pid
        USING ERRCODE = 'SR006', HINT = format('end it with SELECT pg_terminate_backend(%s), then try again', v_pid);
    END IF;
    PERFORM pg_catalog.pg_sleep(0.05);
  END LOOP;
  RETURN v_pid;
END $$;
