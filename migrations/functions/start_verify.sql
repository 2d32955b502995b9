-- Asks the node's agent to compare the node's tables with the peer it
-- replicates from (SPEC 4.5): a verify_runs row with one verify_tables row
-- per table, and a verify_node job. Runs on the node's own database. Every
-- refusal comes before anything is written.
-- options: tables (names as scope_tables reads them) or schema; key_limit
-- (differing keys kept per table, 1..1000000, default 1000); reason
-- 'verify' (default) or 'reinit' (a reinit's last step, on a node that is
-- reinitializing).
CREATE OR REPLACE FUNCTION steep_repl.start_verify(p_node text, p_peer text DEFAULT NULL, p_options jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes := steep_repl.get_node(p_node);
  v_opts jsonb := coalesce(p_options, '{}');
  v_peer text;
  v_reason text;
  v_key_limit numeric;
  v_name text;
  v_job record;
  v_busy bigint;
  v_tables jsonb;
  v_verify_id bigint;
  v_job_id bigint;
BEGIN
  PERFORM steep_repl.require_local_node('start_verify', p_node, 'node verify');
  IF jsonb_typeof(v_opts) <> 'object' THEN
    RAISE EXCEPTION 'verify options are a JSON object, got %', v_opts USING ERRCODE = 'SR004';
  END IF;
  IF EXISTS (SELECT 1 FROM jsonb_object_keys(v_opts) k WHERE k NOT IN ('tables', 'schema', 'key_limit', 'reason')) THEN
    RAISE EXCEPTION 'unknown verify option %', (SELECT string_agg(quote_literal(k), ', ') FROM jsonb_object_keys(v_opts) k
                                                 WHERE k NOT IN ('tables', 'schema', 'key_limit', 'reason'))
      USING ERRCODE = 'SR004', HINT = 'verify options: tables, schema, key_limit, reason';
  END IF;
  v_reason := coalesce(v_opts ->> 'reason', 'verify');
  IF jsonb_typeof(coalesce(v_opts -> 'reason', '"verify"')) <> 'string' OR v_reason NOT IN ('verify', 'reinit') THEN
    RAISE EXCEPTION 'option reason must be verify or reinit, got %', v_opts -> 'reason' USING ERRCODE = 'SR004';
  END IF;
  IF jsonb_typeof(coalesce(v_opts -> 'key_limit', '1000')) = 'number' THEN
    v_key_limit := (coalesce(v_opts -> 'key_limit', '1000') #>> '{}')::numeric;
  END IF;
  IF v_key_limit IS NULL OR v_key_limit <> trunc(v_key_limit) OR v_key_limit NOT BETWEEN 1 AND 1000000 THEN
    RAISE EXCEPTION 'option key_limit must be a whole number from 1 to 1000000, got %', v_opts -> 'key_limit'
      USING ERRCODE = 'SR004';
  END IF;

  v_peer := coalesce(p_peer, v_node.init_source_node);
  IF v_peer IS NULL THEN
    RAISE EXCEPTION 'node % has no source to compare with', quote_ident(p_node)
      USING ERRCODE = 'SR004', HINT = 'name the peer it replicates from (--from)';
  END IF;
  PERFORM steep_repl.get_node(v_peer);
  IF v_peer = p_node THEN
    RAISE EXCEPTION 'node % cannot be compared with itself', quote_ident(p_node) USING ERRCODE = 'SR004';
  END IF;

  -- Serializes concurrent start/cancel/finish calls for this node.
  SELECT * INTO v_node FROM steep_repl.nodes WHERE node_id = p_node FOR UPDATE;

  -- A run whose job is gone (removed by hand, or out of attempts) is over.
  UPDATE steep_repl.verify_runs r
     SET state = 'failed', phase = 'done', finished_at = now(), updated_at = now(),
         error = coalesce(error, 'its job ended without recording a result')
   WHERE r.node_id = p_node AND r.state IN ('queued', 'running')
     AND NOT EXISTS (SELECT 1 FROM steep_repl.verify_job(p_node) j
                     WHERE j.job_id = r.job_id AND (j.locked_at IS NOT NULL OR j.attempts < j.max_attempts));
  SELECT verify_id INTO v_busy FROM steep_repl.verify_runs WHERE node_id = p_node AND state IN ('queued', 'running');
  IF v_busy IS NOT NULL
     OR EXISTS (SELECT 1 FROM steep_repl.verify_job(p_node) j WHERE j.locked_at IS NOT NULL OR j.attempts < j.max_attempts) THEN
    RAISE EXCEPTION 'a verify of node % is already queued or running%', quote_ident(p_node), coalesce(format(' (verify %s)', v_busy), '')
      USING ERRCODE = 'SR006',
            HINT = format('follow it with SELECT steep_repl.latest_verify(%L), or stop it with SELECT steep_repl.cancel_verify(%L)', p_node, p_node);
  END IF;

  IF v_reason = 'verify' AND v_node.init_state NOT IN ('synchronized', 'diverged') THEN
    RAISE EXCEPTION 'node % is %: only a synchronized or diverged node is verified', quote_ident(p_node), v_node.init_state
      USING ERRCODE = 'SR003',
            HINT = CASE WHEN (SELECT in_progress FROM steep_repl.init_states WHERE state = v_node.init_state)
                        THEN 'wait until its initialization has finished (steep-repl node progress)'
                        ELSE 'initialize it first (steep-repl node start)' END;
  END IF;
  IF v_reason = 'reinit' AND v_node.init_state <> 'reinitializing' THEN
    RAISE EXCEPTION 'node % is %: a reinit''s verify runs while it is reinitializing', quote_ident(p_node), v_node.init_state
      USING ERRCODE = 'SR003';
  END IF;

  v_name := steep_repl.replication_name(v_peer, p_node);
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_subscription
                 WHERE subname = v_name AND subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())) THEN
    RAISE EXCEPTION 'node % does not replicate from node % (no subscription %)', quote_ident(p_node), quote_ident(v_peer), v_name
      USING ERRCODE = 'SR004',
            HINT = 'verify compares a node with the peer it replicates from'
                   || coalesce(format('; node %s replicates from %s', quote_ident(p_node), quote_ident(v_node.init_source_node)), '');
  END IF;

  SELECT coalesce(jsonb_agg(jsonb_build_object('schema_name', t.schema_name, 'table_name', t.table_name, 'label', t.label)
                            ORDER BY t.schema_name, t.table_name), '[]')
    INTO v_tables
    FROM steep_repl.scope_tables(v_name, v_opts - 'key_limit' - 'reason',
                                 format('node %s receives from node %s', quote_ident(p_node), quote_ident(v_peer))) t;

  INSERT INTO steep_repl.verify_runs (node_id, peer_node_id, reason, scope, options, tables_total)
  VALUES (p_node, v_peer, v_reason,
          jsonb_strip_nulls(jsonb_build_object('tables', v_opts -> 'tables', 'schema', v_opts -> 'schema')),
          jsonb_build_object('key_limit', v_key_limit::int), jsonb_array_length(v_tables))
  RETURNING verify_id INTO v_verify_id;
  INSERT INTO steep_repl.verify_tables (verify_id, schema_name, table_name)
  SELECT v_verify_id, t ->> 'schema_name', t ->> 'table_name' FROM jsonb_array_elements(v_tables) t;

  v_job_id := steep_repl.enqueue('verify_node', jsonb_build_object('verify_id', v_verify_id, 'node_id', p_node), 'verify:' || p_node, 5);
  UPDATE steep_repl.verify_runs SET job_id = v_job_id WHERE verify_id = v_verify_id;

  PERFORM steep_repl.emit_event('verify.started', p_node, jsonb_build_object(
    'verify_id', v_verify_id, 'peer_node', v_peer, 'reason', v_reason, 'job_id', v_job_id,
    'key_limit', v_key_limit::int, 'tables_total', jsonb_array_length(v_tables),
    'tables', (SELECT jsonb_agg(t -> 'label') FROM (SELECT t FROM jsonb_array_elements(v_tables) t LIMIT 50) l)));

  RETURN jsonb_build_object(
    'verify_id', v_verify_id,
    'node_id', p_node,
    'peer_node_id', v_peer,
    'reason', v_reason,
    'key_limit', v_key_limit::int,
    'tables', coalesce((SELECT jsonb_agg(t -> 'label') FROM jsonb_array_elements(v_tables) t), '[]'),
    'job_id', v_job_id,
    'follow', jsonb_build_object(
      'status', format('SELECT steep_repl.verify_status(%s)', v_verify_id),
      'channels', jsonb_build_array('steep_repl_progress', 'steep_repl_events', 'steep_repl_state'),
      'cancel', format('SELECT steep_repl.cancel_verify(%L)', p_node)));
END $$;
