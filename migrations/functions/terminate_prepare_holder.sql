-- node prepare --for pg_dump holds the slot's exported snapshot on its
-- replication connection (application_name 'steep-repl prepare'); the slot
-- itself is not active meanwhile. Cancel, expiry and node complete end that
-- session (found by its snapshot, steep_repl.snapshot_holder) and wait until
-- it is gone, so the slot can be dropped or streamed from. A slot active in
-- a 'steep-repl prepare' session is ended the same way; a slot held by
-- anything else (a subscription streaming from it) is not touched.
-- Returns the pid ended, NULL when there was none.
CREATE OR REPLACE FUNCTION steep_repl.terminate_prepare_holder(p_slot_name text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_pid integer;
  v_deadline timestamptz := clock_timestamp() + interval '10 seconds';
BEGIN
  SELECT coalesce(steep_repl.snapshot_holder(i.snapshot_name),
                  (SELECT s.active_pid FROM pg_catalog.pg_replication_slots s JOIN pg_catalog.pg_stat_activity a ON a.pid = s.active_pid
                    WHERE s.slot_name = p_slot_name AND a.application_name = 'steep-repl prepare'))
    INTO v_pid
    FROM (SELECT (SELECT snapshot_name FROM steep_repl.init_slots WHERE slot_name = p_slot_name) AS snapshot_name) i;
  IF v_pid IS NULL THEN
    RETURN NULL;
  END IF;
  -- waits up to 5 s for the process to exit
  PERFORM pg_catalog.pg_terminate_backend(v_pid, 5000);
  WHILE EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = p_slot_name AND active_pid = v_pid)
        OR EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE pid = v_pid AND locktype = 'virtualxid') LOOP
    IF clock_timestamp() > v_deadline THEN
      RAISE EXCEPTION 'the snapshot holder of slot % (pid %) did not end within 10 seconds', quote_ident(p_slot_name), v_pid
        USING ERRCODE = 'SR006', HINT = format('end it with SELECT pg_terminate_backend(%s), then try again', v_pid);
    END IF;
    PERFORM pg_catalog.pg_sleep(0.05);
  END LOOP;
  RETURN v_pid;
END $$;
