-- node complete, on the target: the DBA restored the backup; the manual
-- init of p_node subscribes from the prepared slot now (job init_manual).
-- A) This database is p_node, its manual init waits in preparing (or
--    failed: resumed): the request is recorded and the job queued.
-- B) This database is a physical copy of the source (pg_basebackup), so it
--    carries the source's registry, with the source as its local node, and
--    the source's prepare row for p_node. In one transaction it first
--    removes what came along (this database's subscriptions, without
--    dropping the peers' slots; publications; logical slots; steep-repl's
--    local origins; steep_repl's init rows; graphile_worker's jobs), makes
--    p_node the local node, records the init (start_init) and where the
--    copy's recovery ended, then queues the job. Subscriptions of other
--    databases of the copy are listed with the statements that remove them.
--    With max_logical_replication_workers = 0 (node prepare says to set it,
--    so that the copy's apply workers do not start at promotion) the reset
--    is done but no job queued: reset the setting, restart, complete again.
-- p_options: schema_sync, timeout, lag_threshold_bytes, reverse_slot_ttl,
-- source_lsn. Every refusal changes nothing.
CREATE OR REPLACE FUNCTION steep_repl.complete_init(p_node text, p_options jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_local text := steep_repl.local_node_id();
  v_node steep_repl.nodes := steep_repl.get_node(p_node);
  v_given jsonb := coalesce(p_options, '{}');
  v_opts jsonb;
  v_progress steep_repl.init_progress;
  v_state steep_repl.init_method_state;
  v_prepare steep_repl.init_slots;
  v_end jsonb;
  v_lsn pg_lsn;
  v_resume boolean := false;
  v_job bigint;
  v_removed text[] := '{}';
  v_others jsonb := '[]';
  v_count bigint;
  v_table text;
  r record;
  v_no_workers boolean := current_setting('max_logical_replication_workers')::integer = 0;
  v_workers_hint text := 'ALTER SYSTEM RESET max_logical_replication_workers (or set it above 0), restart the server, then run node complete again';
BEGIN
  IF jsonb_typeof(v_given) <> 'object' THEN
    RAISE EXCEPTION 'complete options must be a JSON object, got %', jsonb_typeof(v_given) USING ERRCODE = 'SR004';
  END IF;
  SELECT string_agg(quote_literal(k), ', ') INTO v_table FROM jsonb_object_keys(v_given) k WHERE k IN ('backup', 'expires');
  IF v_table IS NOT NULL THEN
    RAISE EXCEPTION 'option % is given to node prepare, not to node complete', v_table
      USING ERRCODE = 'SR004', HINT = 'complete takes: schema_sync, timeout, lag_threshold_bytes, reverse_slot_ttl, source_lsn';
  END IF;
  -- checked and normalized; only the options given are kept
  v_opts := steep_repl.init_options('manual', v_given);
  v_given := coalesce((SELECT jsonb_object_agg(key, value) FROM jsonb_each(v_opts) WHERE v_given ? key), '{}');
  v_lsn := (v_given ->> 'source_lsn')::pg_lsn;

  IF v_local IS NULL THEN
    RAISE EXCEPTION 'this database is not registered as a local node' USING ERRCODE = 'SR004',
      HINT = format('complete_init runs on the database of node %s (or on its pg_basebackup copy of the source)', quote_ident(p_node));
  END IF;

  IF v_local <> p_node THEN
    -- B: a pg_basebackup copy of the source, with the source's prepare row
    SELECT * INTO v_prepare FROM steep_repl.init_slots
     WHERE for_node = p_node AND purpose = 'manual' AND backup = 'pg_basebackup';
    IF NOT FOUND THEN
      RAISE EXCEPTION 'complete_init runs on the database of node %; this database is node % and no pg_basebackup prepare for % came along with it',
        quote_ident(p_node), quote_ident(v_local), quote_ident(p_node)
        USING ERRCODE = 'SR004',
              HINT = format('connect to %s:%s/%s (the target''s database, or the restored copy of a pg_basebackup prepare) and run it there',
                            v_node.host, v_node.port, v_node.dbname);
    END IF;
    IF pg_catalog.pg_is_in_recovery() THEN
      RAISE EXCEPTION 'this copy is still in recovery' USING ERRCODE = 'SR004',
        HINT = 'restore it with the recovery settings node prepare printed (recovery_target_lsn, recovery_target_inclusive = off, recovery_target_action = promote) and let it promote';
    END IF;
    v_end := steep_repl.recovery_end();
    IF (v_end ->> 'timeline')::integer = 1 OR v_end ->> 'stop' IS DISTINCT FROM 'before' THEN
      RAISE EXCEPTION 'this copy did not end its recovery just before the slot''s LSN: %',
        CASE WHEN (v_end ->> 'timeline')::integer = 1 THEN 'it is on timeline 1, never promoted at a recovery target'
             ELSE format('timeline %s, %s', v_end ->> 'timeline', coalesce(v_end ->> 'reason', 'no reason recorded')) END
        USING ERRCODE = 'SR004',
              HINT = 'restore the base backup again with the recovery settings node prepare printed (recovery_target_lsn, recovery_target_inclusive = off, recovery_target_action = promote)';
    END IF;
    IF v_lsn IS NOT NULL AND ((v_end ->> 'stop_lsn')::pg_lsn < v_lsn OR (v_end ->> 'switchpoint')::pg_lsn > v_lsn) THEN
      RAISE EXCEPTION 'this copy''s recovery ended at % (%), not just before source_lsn %', v_end ->> 'switchpoint', v_end ->> 'reason', v_lsn
        USING ERRCODE = 'SR004', HINT = format('restore it with recovery_target_lsn = ''%s'' and recovery_target_inclusive = off', v_lsn);
    END IF;

    -- Never reset the source itself (complete run on the wrong database, a
    -- source once promoted at a recovery target): a base backup carries no
    -- slot, and stops before the row got its LSN (record_manual_slot wrote
    -- it after the slot's point).
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = v_prepare.slot_name)
       OR (v_prepare.lsn IS NOT NULL AND v_lsn IS NULL) THEN
      RAISE EXCEPTION 'this database is the source of the prepare for node %, not a restored copy of it: %', quote_ident(p_node),
        CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = v_prepare.slot_name)
             THEN format('it holds slot %s', v_prepare.slot_name)
             ELSE format('its prepare row has the slot''s LSN %s (a copy stopped before it has none)', v_prepare.lsn) END
        USING ERRCODE = 'SR004',
              HINT = format('run it on the copy restored from the base backup: steep-repl node complete %s --db <the copy>',
                            steep_repl.shell_word(p_node));
    END IF;

    -- what came along from the source: first the subscriptions, so no
    -- apply worker of the copy takes a peer's slot (SET slot_name = NONE:
    -- the peer's slot is the source's, never dropped from here)
    FOR r IN SELECT s.subname::text AS name FROM pg_catalog.pg_subscription s
              WHERE s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) ORDER BY 1 LOOP
      EXECUTE format('ALTER SUBSCRIPTION %I DISABLE', r.name);
      EXECUTE format('ALTER SUBSCRIPTION %I SET (slot_name = NONE)', r.name);
      EXECUTE format('DROP SUBSCRIPTION %I', r.name);
      v_removed := v_removed || format('subscription %I', r.name);
    END LOOP;
    SELECT coalesce(jsonb_agg(jsonb_build_object('database', d.datname, 'subscription', s.subname, 'enabled', s.subenabled,
             'statements', jsonb_build_array(format('ALTER SUBSCRIPTION %I DISABLE', s.subname),
                                             format('ALTER SUBSCRIPTION %I SET (slot_name = NONE)', s.subname),
                                             format('DROP SUBSCRIPTION %I', s.subname)))
             ORDER BY d.datname, s.subname), '[]')
      INTO v_others
      FROM pg_catalog.pg_subscription s JOIN pg_catalog.pg_database d ON d.oid = s.subdbid
     WHERE d.datname <> current_database();
    FOR r IN SELECT p.pubname::text AS name FROM pg_catalog.pg_publication p ORDER BY 1 LOOP
      EXECUTE format('DROP PUBLICATION %I', r.name);
      v_removed := v_removed || format('publication %I', r.name);
    END LOOP;
    -- steep_repl's rows of the source's own inits, snapshots and prepares
    FOREACH v_table IN ARRAY ARRAY['init_slots', 'snapshot_parts', 'snapshots', 'init_parts', 'init_table_progress',
                                   'init_method_state', 'init_progress'] LOOP
      EXECUTE format('DELETE FROM steep_repl.%I', v_table);
      GET DIAGNOSTICS v_count = ROW_COUNT;
      IF v_count > 0 THEN
        v_removed := v_removed || format('%s row(s) of steep_repl.%s', v_count, v_table);
      END IF;
    END LOOP;
    -- the source's queued jobs (its slots' expiries, its inits) are not this node's
    IF to_regclass('graphile_worker._private_jobs') IS NOT NULL THEN
      DELETE FROM graphile_worker._private_jobs;
      GET DIAGNOSTICS v_count = ROW_COUNT;
      IF v_count > 0 THEN
        v_removed := v_removed || format('%s job(s) of graphile_worker', v_count);
      END IF;
      DELETE FROM graphile_worker._private_job_queues;
    END IF;

    UPDATE steep_repl.nodes SET is_local = false WHERE is_local;
    UPDATE steep_repl.nodes SET is_local = true WHERE node_id = p_node;
    PERFORM steep_repl.start_init(p_node, v_local, 'manual', v_given || '{"backup": "pg_basebackup"}');
    PERFORM steep_repl.record_method_state(p_node, jsonb_build_object(
      'slot_name', v_prepare.slot_name, 'backup', 'pg_basebackup', 'recovery_end', v_end, 'expires_at', v_prepare.expires_at,
      'source_lsn', v_lsn));

    -- last, as they do not roll back: logical slots of this database (a
    -- base backup carries none, a failover slot sync may have made one)
    -- and this database's origins for local changes
    FOR r IN SELECT s.slot_name::text AS name FROM pg_catalog.pg_replication_slots s
              WHERE s.database = current_database() AND s.slot_type = 'logical' AND NOT s.active ORDER BY 1 LOOP
      PERFORM pg_catalog.pg_drop_replication_slot(r.name);
      v_removed := v_removed || format('slot %I', r.name);
    END LOOP;
    FOR r IN SELECT o.roname::text AS name FROM pg_catalog.pg_replication_origin o
              WHERE o.roname = 'steep_repl_local_' || (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
                 OR o.roname LIKE 'steep\_repl\_local\_' || (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) || '\_%'
              ORDER BY 1 LOOP
      PERFORM pg_catalog.pg_replication_origin_drop(r.name);
      v_removed := v_removed || format('origin %I', r.name);
    END LOOP;
    PERFORM steep_repl.emit_event('node.copy_reset', p_node, jsonb_build_object(
      'source_node', v_local, 'removed', to_jsonb(v_removed), 'other_databases', v_others, 'recovery_end', v_end));

    IF v_no_workers THEN
      RETURN jsonb_build_object('node_id', p_node, 'source_node_id', v_local, 'job_id', NULL, 'backup', 'pg_basebackup',
        'source_lsn', v_lsn::text, 'resumed', false, 'recovery_end', v_end, 'removed', to_jsonb(v_removed),
        'other_databases', v_others, 'restart_required', true,
        'message', 'the copy was reset, but max_logical_replication_workers is 0 on this server: the subscription could not start',
        'hint', v_workers_hint);
    END IF;
    v_node := steep_repl.get_node(p_node);
  ELSE
    -- A: this node's manual init, restored by the DBA
    SELECT * INTO v_node FROM steep_repl.nodes WHERE node_id = p_node FOR UPDATE;
    SELECT * INTO v_progress FROM steep_repl.init_progress WHERE node_id = p_node;
    IF v_progress.method IS DISTINCT FROM 'manual' OR v_node.init_state NOT IN ('preparing', 'failed') THEN
      RAISE EXCEPTION 'node % has no manual initialization waiting for complete: it is %', quote_ident(p_node),
        v_node.init_state || CASE WHEN v_progress.method <> 'manual' THEN format(' (method %s)', v_progress.method) ELSE '' END
        USING ERRCODE = 'SR004',
              HINT = format('prepare one on the source first: steep-repl node prepare %s --from <source> --for pg_dump (or pg_basebackup)',
                            steep_repl.shell_word(p_node));
    END IF;
    IF EXISTS (SELECT 1 FROM steep_repl.init_job(p_node)) THEN
      RAISE EXCEPTION 'an initialization of node % is already queued or running', quote_ident(p_node)
        USING ERRCODE = 'SR006', HINT = 'follow it with steep-repl node progress, or stop it with steep-repl node cancel';
    END IF;
    IF v_no_workers THEN
      RAISE EXCEPTION 'max_logical_replication_workers is 0 on this server: the subscription could not start'
        USING ERRCODE = 'SR004', HINT = v_workers_hint;
    END IF;
    IF v_node.init_state = 'failed' THEN
      v_resume := true;
      PERFORM steep_repl.transition(p_node, 'preparing', jsonb_build_object(
        'reason', 'init resumed', 'source_node', v_node.init_source_node, 'method', 'manual'));
      UPDATE steep_repl.init_progress
         SET phase = 'preparing', error = NULL, failure_kind = NULL, cancel_requested_at = NULL, updated_at = now()
       WHERE node_id = p_node;
    END IF;
    -- each request names its own handover point: a --source-lsn refused
    -- before is not used by a complete that gives none
    UPDATE steep_repl.init_progress SET options = (options - 'source_lsn') || v_given, updated_at = now() WHERE node_id = p_node;
    PERFORM steep_repl.record_method_state(p_node, jsonb_build_object('source_lsn', v_lsn));
  END IF;

  -- both: the request, and the job that subscribes
  v_state := steep_repl.record_method_state(p_node, jsonb_build_object('complete_requested_at', now()));
  v_job := steep_repl.enqueue((SELECT task FROM steep_repl.init_methods WHERE method = 'manual'),
                              jsonb_build_object('node_id', p_node, 'source_node_id', v_node.init_source_node), 'init:' || p_node, 25);
  UPDATE steep_repl.init_progress SET job_id = v_job WHERE node_id = p_node;
  PERFORM steep_repl.emit_event('init.complete_requested', p_node, jsonb_build_object(
    'source_node', v_node.init_source_node, 'backup', v_state.backup, 'source_lsn', v_state.source_lsn::text,
    'job_id', v_job, 'resume', v_resume));
  RETURN jsonb_build_object('node_id', p_node, 'source_node_id', v_node.init_source_node, 'job_id', v_job,
    'backup', v_state.backup, 'source_lsn', v_state.source_lsn::text, 'resumed', v_resume, 'recovery_end', v_end,
    'removed', to_jsonb(v_removed), 'other_databases', v_others, 'restart_required', false,
    'follow', jsonb_build_object(
      'status', format('SELECT steep_repl.init_status(%L)', p_node),
      'channels', jsonb_build_array('steep_repl_progress', 'steep_repl_state', 'steep_repl_events'),
      'cancel', format('SELECT steep_repl.cancel_init(%L)', p_node)));
END $$;
