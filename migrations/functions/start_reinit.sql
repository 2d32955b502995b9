-- Re-copy some or all tables of a synchronized or diverged node from its
-- source (SPEC 4.5), on the node's own database. p_scope: {"tables":
-- [names]} | {"schema": "s"} | {"full": true}; p_options: from (must be the
-- node's source), timeout. Everything is checked before anything changes;
-- then the node is reinitializing, its init_progress row carries the reinit
-- ({scope, tables, previous_state, step, changed}) and the job is queued
-- under the init's job key, so a start, a second reinit or a detach is
-- refused while it runs. Tables and schema: job reinit_node (only those
-- tables, the rest keeps replicating); full: the node's own init method
-- (its init task treats reinitializing as preparing).
CREATE OR REPLACE FUNCTION steep_repl.start_reinit(p_node text, p_scope jsonb, p_options jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes := steep_repl.get_node(p_node);
  v_opts jsonb := coalesce(p_options, '{}');
  v_scope jsonb := coalesce(p_scope, '{}');
  v_kind text;
  v_source text;
  v_progress steep_repl.init_progress;
  v_method steep_repl.init_methods;
  v_timeout jsonb := 'null';
  v_tables jsonb := '[]';
  v_relids oid[];
  v_not_ready text;
  v_reinit jsonb;
  v_job bigint;
  v_hint_again text;
  v_subscription text;
  v_enabled boolean;
BEGIN
  PERFORM steep_repl.require_local_node('start_reinit', p_node, 'node reinit');
  IF jsonb_typeof(v_opts) <> 'object' THEN
    RAISE EXCEPTION 'reinit options must be a JSON object, got %', jsonb_typeof(v_opts) USING ERRCODE = 'SR004';
  END IF;
  IF EXISTS (SELECT 1 FROM jsonb_object_keys(v_opts) k WHERE k NOT IN ('from', 'timeout')) THEN
    RAISE EXCEPTION 'unknown reinit option %', (SELECT string_agg(quote_literal(k), ', ') FROM jsonb_object_keys(v_opts) k WHERE k NOT IN ('from', 'timeout'))
      USING ERRCODE = 'SR004', HINT = 'reinit takes: from, timeout';
  END IF;
  IF jsonb_typeof(v_scope) = 'object' AND (SELECT count(*) FROM jsonb_object_keys(v_scope)) = 1 THEN
    SELECT min(k) INTO v_kind FROM jsonb_object_keys(v_scope) k WHERE k IN ('tables', 'schema', 'full');
  END IF;
  IF v_kind IS NULL OR (v_kind = 'full' AND v_scope -> 'full' <> 'true') THEN
    RAISE EXCEPTION 'a reinit scope is one of {"tables": [...]}, {"schema": "..."} or {"full": true}, got %', v_scope
      USING ERRCODE = 'SR004';
  END IF;
  IF coalesce(jsonb_typeof(v_opts -> 'timeout'), 'null') <> 'null' THEN
    v_timeout := steep_repl.option_value((SELECT s FROM steep_repl.init_option_specs s WHERE s.option = 'timeout'), v_opts -> 'timeout');
  END IF;

  -- Serializes start, cancel and the job's steps for this node.
  SELECT * INTO v_node FROM steep_repl.nodes WHERE node_id = p_node FOR UPDATE;

  IF EXISTS (SELECT 1 FROM steep_repl.init_job(p_node)) THEN
    RAISE EXCEPTION 'an initialization or reinit of node % is already queued or running', quote_ident(p_node)
      USING ERRCODE = 'SR006', HINT = 'follow it with steep-repl node progress, or stop it with steep-repl node cancel';
  END IF;
  -- as start_verify counts one: its job is running or will run
  IF EXISTS (SELECT 1 FROM steep_repl.verify_job(p_node) j WHERE j.locked_at IS NOT NULL OR j.attempts < j.max_attempts) THEN
    RAISE EXCEPTION 'a verify of node % is queued or running', quote_ident(p_node)
      USING ERRCODE = 'SR006', HINT = format('wait for it, or cancel it: SELECT steep_repl.cancel_verify(%L)', p_node);
  END IF;
  IF v_node.init_state NOT IN ('synchronized', 'diverged') THEN
    RAISE EXCEPTION 'node % is %: only a synchronized or diverged node can be reinitialized', quote_ident(p_node), v_node.init_state
      USING ERRCODE = 'SR003',
            HINT = CASE
              WHEN v_node.init_state = 'uninitialized' THEN format('initialize it: steep-repl node start %s --from <source>', steep_repl.shell_word(p_node))
              WHEN v_node.init_state = 'failed' THEN steep_repl.init_resume_hint(p_node)
              ELSE 'wait until it is synchronized, or stop it with steep-repl node cancel' END;
  END IF;
  v_source := v_node.init_source_node;
  IF v_source IS NULL THEN
    RAISE EXCEPTION 'node % is not a copy of another node (it has no source): there is nothing to re-copy it from', quote_ident(p_node)
      USING ERRCODE = 'SR004', HINT = 'reinitialize the nodes that copy from it instead';
  END IF;
  v_hint_again := format('steep-repl node detach %s, then steep-repl node start %s --from %s --force (with the method you want)',
                         steep_repl.shell_word(p_node), steep_repl.shell_word(p_node), steep_repl.shell_word(v_source));
  IF v_opts ? 'from' AND jsonb_typeof(v_opts -> 'from') <> 'null' THEN
    IF v_opts ->> 'from' = p_node THEN
      RAISE EXCEPTION 'node % cannot be reinitialized from itself', quote_ident(p_node) USING ERRCODE = 'SR004';
    END IF;
    IF v_opts ->> 'from' IS DISTINCT FROM v_source THEN
      RAISE EXCEPTION 'node % copies from node %, not from %', quote_ident(p_node), quote_ident(v_source), quote_ident(v_opts ->> 'from')
        USING ERRCODE = 'SR004',
              HINT = format('a reinit copies from the node''s own source (leave --from out); to copy from %s instead: steep-repl node detach %s, then steep-repl node start %s --from %s --force',
                            v_opts ->> 'from', steep_repl.shell_word(p_node), steep_repl.shell_word(p_node), steep_repl.shell_word(v_opts ->> 'from'));
    END IF;
  END IF;
  SELECT * INTO v_progress FROM steep_repl.init_progress WHERE node_id = p_node FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'node % has no record of its initialization', quote_ident(p_node)
      USING ERRCODE = 'SR003', HINT = 'initialize it again: ' || v_hint_again;
  END IF;
  -- A merged node replicates both ways: emptying one side's tables while
  -- the other keeps sending its writes cannot be made exact.
  IF v_progress.method = 'merge' THEN
    RAISE EXCEPTION 'node % was merged with node % and replicates both ways: a reinit re-copies one side only', quote_ident(p_node), quote_ident(v_source)
      USING ERRCODE = 'SR004',
            HINT = format('mend the rows node status names on one node and verify again (steep-repl node verify %s), or detach both nodes and merge them again',
                          steep_repl.shell_word(p_node));
  END IF;
  v_method := steep_repl.init_method(v_progress.method);

  -- The pair's subscription (by the oid the init recorded: a rename does
  -- not hide it), and the tables of the scope among those it receives:
  -- unknown names and schemas are refused here.
  SELECT s.subname, s.subenabled INTO v_subscription, v_enabled FROM pg_catalog.pg_subscription s
   WHERE s.subdbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
     AND (s.oid = (SELECT m.subscription_oid FROM steep_repl.init_method_state m WHERE m.node_id = p_node)
          OR s.subname = steep_repl.replication_name(v_source, p_node))
   ORDER BY s.oid = (SELECT m.subscription_oid FROM steep_repl.init_method_state m WHERE m.node_id = p_node) DESC NULLS LAST
   LIMIT 1;
  IF v_subscription IS NULL THEN
    RAISE EXCEPTION 'node % has no subscription from node % in this database', quote_ident(p_node), quote_ident(v_source)
      USING ERRCODE = 'SR003', HINT = 'a reinit re-copies through the pair''s subscription; initialize the node again instead: ' || v_hint_again;
  END IF;
  SELECT coalesce(jsonb_agg(jsonb_build_object('schema_name', t.schema_name, 'table_name', t.table_name) ORDER BY t.schema_name, t.table_name), '[]'),
         array_agg(s.relid),
         string_agg(format('%s (%s)', t.label, CASE s.sync_state WHEN 'i' THEN 'not started' WHEN 'd' THEN 'copying' WHEN 'f' THEN 'copied'
                                                                  WHEN 's' THEN 'synchronized, not yet ready' ELSE s.sync_state END), ', ')
           FILTER (WHERE s.sync_state <> 'r')
    INTO v_tables, v_relids, v_not_ready
    FROM steep_repl.scope_tables(v_subscription, CASE WHEN v_kind = 'full' THEN '{}' ELSE v_scope END,
                                 format('node %s receives from node %s', quote_ident(p_node), quote_ident(v_source))) t
    JOIN steep_repl.subscription_tables(v_subscription) s ON s.schema_name = t.schema_name AND s.table_name = t.table_name;

  IF v_kind = 'full' THEN
    -- Manual: the DBA's backup was the copy; two-phase: its snapshot was loaded once.
    IF v_method.method IN ('manual', 'two-phase') THEN
      RAISE EXCEPTION 'node % was initialized with method %: --full re-copies with the node''s own method, and % cannot run again by itself',
        quote_ident(p_node), v_method.method, v_method.method
        USING ERRCODE = 'SR004',
              HINT = CASE v_method.method
                WHEN 'manual' THEN format('take a new backup: steep-repl node detach %s, then steep-repl node prepare and node complete again',
                                          steep_repl.shell_word(p_node))
                ELSE format('generate a new snapshot and initialize again: %s', v_hint_again) END;
    END IF;
  ELSE
    IF jsonb_array_length(v_tables) = 0 THEN
      RAISE EXCEPTION 'node % receives no table in scope %', quote_ident(p_node), v_scope USING ERRCODE = 'SR004';
    END IF;
    IF v_not_ready IS NOT NULL THEN
      RAISE EXCEPTION 'table(s) of node % are still being synchronized by its subscription: %', quote_ident(p_node), v_not_ready
        USING ERRCODE = 'SR003', HINT = 'wait until PostgreSQL reports them ready (pg_subscription_rel state r), then reinit';
    END IF;
    IF NOT v_enabled THEN
      RAISE EXCEPTION 'the subscription of node % from % is disabled', quote_ident(p_node), quote_ident(v_source)
        USING ERRCODE = 'SR003', HINT = 'enable it (ALTER SUBSCRIPTION ... ENABLE) and let it catch up, then reinit';
    END IF;
    PERFORM steep_repl.reinit_foreign_keys(p_node, v_relids);
  END IF;

  v_reinit := jsonb_build_object(
    'scope', v_kind,
    'tables', CASE WHEN v_kind = 'full' THEN NULL ELSE v_tables END,
    'schema', CASE WHEN v_kind = 'schema' THEN v_tables -> 0 ->> 'schema_name' END,
    'previous_state', v_node.init_state,
    'step', 'queued',
    -- true once the tables left the publication (tables, schema) or the
    -- pair's replication was removed (full): a cancel can no longer undo it
    'changed', false,
    'timeout', v_timeout,
    'verify_id', NULL,
    'requested_at', now());

  PERFORM steep_repl.transition(p_node, 'reinitializing', jsonb_build_object(
    'reason', CASE v_kind WHEN 'full' THEN 'reinit of every table' WHEN 'schema' THEN 'reinit of schema ' || quote_ident(v_reinit ->> 'schema')
                          ELSE 'reinit of ' || (SELECT string_agg(l, ', ') FROM jsonb_array_elements_text(steep_repl.reinit_labels(v_reinit)) l) END,
    'source_node', v_source, 'scope', v_kind));

  -- The node's init_progress row is the reinit's now: progress, the live
  -- bar and cancel work as for an init. Full keeps the method's options,
  -- emptying the tables under the origin (force).
  DELETE FROM steep_repl.init_table_progress WHERE node_id = p_node;
  DELETE FROM steep_repl.init_parts WHERE node_id = p_node;
  UPDATE steep_repl.init_progress
     SET phase = 'preparing', overall_percent = 0, tables_total = 0, tables_done = 0, current_table = NULL, current_table_percent = NULL,
         rows_total = NULL, rows_copied = 0, bytes_total = NULL, bytes_copied = 0, rows_per_second = NULL, bytes_per_second = NULL,
         eta_seconds = NULL, workers_active = 0, lag_bytes = NULL, error = NULL, failure_kind = NULL, cancel_requested_at = NULL,
         options = CASE WHEN v_kind = 'full' THEN (options - 'resume') || jsonb_build_object('force', true, 'timeout', v_timeout) ELSE options END,
         reinit = v_reinit, started_at = now(), updated_at = now()
   WHERE node_id = p_node;
  IF v_kind <> 'full' THEN
    INSERT INTO steep_repl.init_table_progress (node_id, schema_name, table_name, state)
    SELECT p_node, t ->> 'schema_name', t ->> 'table_name', 'pending' FROM jsonb_array_elements(v_tables) t;
    UPDATE steep_repl.init_progress SET tables_total = jsonb_array_length(v_tables) WHERE node_id = p_node;
  END IF;

  v_job := steep_repl.enqueue(CASE WHEN v_kind = 'full' THEN v_method.task ELSE 'reinit_node' END,
                              jsonb_build_object('node_id', p_node, 'source_node_id', v_source), 'init:' || p_node, 25);
  UPDATE steep_repl.init_progress SET job_id = v_job WHERE node_id = p_node;

  PERFORM steep_repl.emit_event('reinit.started', p_node, jsonb_build_object(
    'source_node', v_source, 'scope', v_kind, 'schema', v_reinit -> 'schema',
    'tables', steep_repl.reinit_labels(v_reinit),
    'method', CASE WHEN v_kind = 'full' THEN v_method.method END,
    'previous_state', v_node.init_state, 'job_id', v_job, 'timeout', v_timeout));

  RETURN jsonb_build_object(
    'node_id', p_node,
    'source_node_id', v_source,
    'scope', v_kind,
    'schema', v_reinit -> 'schema',
    'tables', steep_repl.reinit_labels(v_reinit),
    'method', CASE WHEN v_kind = 'full' THEN v_method.method END,
    'previous_state', v_node.init_state,
    'state', 'reinitializing',
    'job_id', v_job,
    'follow', jsonb_build_object(
      'status', format('SELECT steep_repl.init_status(%L)', p_node),
      'channels', jsonb_build_array('steep_repl_progress', 'steep_repl_state', 'steep_repl_events'),
      'cancel', format('SELECT steep_repl.cancel_init(%L)', p_node)));
END $$;
