-- Run on the source (node prepare, first step): the publication and the
-- row of the pair's slot for a manual init of p_target from the DBA's own
-- backup. The caller then makes the slot as a statement of its own (see
-- prepare_slot; for pg_dump on a replication connection that exports its
-- snapshot and holds it) and records it with record_manual_slot. Every
-- refusal changes nothing. p_options: expires (default 7 days).
CREATE OR REPLACE FUNCTION steep_repl.prepare_manual_slot(p_target text, p_backup text, p_options jsonb DEFAULT '{}')
RETURNS steep_repl.init_slots LANGUAGE plpgsql AS $$
DECLARE
  v_local text := steep_repl.local_node_id();
  v_target steep_repl.nodes := steep_repl.get_node(p_target);
  v_name text;
  v_given jsonb := coalesce(p_options, '{}');
  v_expires bigint;
  v_row steep_repl.init_slots;
  v_no_identity text;
  v_tables text;
BEGIN
  IF v_local IS NULL THEN
    RAISE EXCEPTION 'this database is not registered as a local node'
      USING ERRCODE = 'SR004', HINT = 'prepare runs on the source''s database: register it there with steep-repl node register ... --local';
  END IF;
  IF p_target = v_local THEN
    RAISE EXCEPTION 'node % is this database: prepare runs on the source of the manual init, for its target', quote_ident(p_target)
      USING ERRCODE = 'SR004';
  END IF;
  IF p_backup IS NULL OR p_backup NOT IN ('pg_dump', 'pg_basebackup') THEN
    RAISE EXCEPTION 'backup must be pg_dump or pg_basebackup, got %', quote_nullable(p_backup) USING ERRCODE = 'SR004';
  END IF;
  IF jsonb_typeof(v_given) <> 'object' OR EXISTS (SELECT 1 FROM jsonb_object_keys(v_given) k WHERE k <> 'expires') THEN
    RAISE EXCEPTION 'prepare_manual_slot takes option expires only, got %', v_given::text
      USING ERRCODE = 'SR004', HINT = 'the init''s other options are given to node complete (complete_init)';
  END IF;
  v_expires := (steep_repl.init_options('manual', v_given) ->> 'expires')::bigint;
  IF current_setting('wal_level') <> 'logical' THEN
    RAISE EXCEPTION 'wal_level is %: a logical slot needs wal_level = logical', current_setting('wal_level')
      USING ERRCODE = 'SR004', HINT = 'ALTER SYSTEM SET wal_level = logical on the source, restart it, then prepare again';
  END IF;
  SELECT string_agg(label, ', ' ORDER BY schema_name, table_name) FILTER (WHERE NOT has_identity),
         string_agg(label, ', ' ORDER BY schema_name, table_name)
    INTO v_no_identity, v_tables
    FROM steep_repl.replicated_tables();
  IF v_no_identity IS NOT NULL THEN
    RAISE EXCEPTION 'tables without a primary key or replica identity cannot replicate their updates and deletes: %', v_no_identity
      USING ERRCODE = 'SR004', HINT = 'add a primary key, or ALTER TABLE ... REPLICA IDENTITY FULL (or USING INDEX), then prepare again';
  END IF;
  -- Recovery of a base backup can only stop at the slot's LSN when the
  -- backup's end lies before it.
  IF p_backup = 'pg_basebackup' AND EXISTS (SELECT 1 FROM pg_catalog.pg_stat_progress_basebackup) THEN
    RAISE EXCEPTION 'a base backup of this server is running'
      USING ERRCODE = 'SR004',
            HINT = 'take the base backup first and prepare after it finished: recovery can only stop at the slot''s LSN if the backup ended before it';
  END IF;

  -- one prepare at a time for this target
  PERFORM 1 FROM steep_repl.nodes WHERE node_id = p_target FOR UPDATE;
  v_name := steep_repl.replication_name(v_local, p_target);
  SELECT * INTO v_row FROM steep_repl.init_slots WHERE slot_name = v_name FOR UPDATE;
  IF FOUND AND (v_row.purpose <> 'manual'
                OR EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = v_name)) THEN
    RAISE EXCEPTION 'slot % is prepared for node % already (%, made %, expires %)', quote_ident(v_name), quote_ident(p_target),
      v_row.purpose || coalesce(' ' || v_row.backup, ''), v_row.created_at, v_row.expires_at
      USING ERRCODE = 'SR006',
            HINT = CASE WHEN v_row.purpose = 'manual'
                        THEN format('complete it (steep-repl node complete %s) or cancel it (steep-repl node cancel %s; SQL: SELECT steep_repl.cancel_manual_prepare(%L))',
                                    steep_repl.shell_word(p_target), steep_repl.shell_word(p_target), p_target)
                        ELSE format('it expires at %s, or drop it with SELECT steep_repl.expire_prepared_slot(%L) after UPDATE steep_repl.init_slots SET expires_at = now() WHERE slot_name = %L',
                                    v_row.expires_at, v_name, v_name) END;
  END IF;
  IF FOUND THEN
    -- a prepare that ended before its slot was made: start it over
    DELETE FROM steep_repl.init_slots WHERE slot_name = v_name;
    PERFORM graphile_worker.remove_job('prepared_slot:' || v_name);
    PERFORM steep_repl.release_slot_publication(v_row.publication);
  ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = v_name) THEN
    RAISE EXCEPTION 'publication % exists already and no prepare made it', quote_ident(v_name)
      USING ERRCODE = 'SR006',
            HINT = format('node %s may replicate from this node already (steep-repl node status %s); if nothing uses it: DROP PUBLICATION %I',
                          quote_ident(p_target), steep_repl.shell_word(p_target), v_name);
  END IF;

  -- As the agent makes it (agent/replication/publication.ts): partitioned
  -- tables through their root, so the target may partition differently.
  EXECUTE format('CREATE PUBLICATION %I %s WITH (publish_via_partition_root = true)', v_name,
                 coalesce('FOR TABLE ' || v_tables, ''));
  PERFORM steep_repl.prepare_slot(v_name, p_target, 'manual', v_name, make_interval(secs => v_expires));
  UPDATE steep_repl.init_slots SET backup = p_backup WHERE slot_name = v_name RETURNING * INTO v_row;
  RETURN v_row;
END $$;
