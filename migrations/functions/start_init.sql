CREATE OR REPLACE FUNCTION steep_repl.start_init(p_target text, p_source text, p_method text DEFAULT 'snapshot', p_options jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_target steep_repl.nodes := steep_repl.get_node(p_target);
  v_source steep_repl.nodes := steep_repl.get_node(p_source);
  v_resume boolean := coalesce(p_options ->> 'resume', '') = 'true';
  v_method steep_repl.init_methods;
  v_opts jsonb;
  v_given jsonb;
  v_missing text;
  v_job bigint;
  v_name text := steep_repl.replication_name(p_source, p_target);
BEGIN
  -- No method given: snapshot, or on resume the method of the failed init.
  v_method := steep_repl.init_method(coalesce(p_method,
    CASE WHEN v_resume THEN (SELECT method FROM steep_repl.init_progress WHERE node_id = p_target) END, 'snapshot'));
  v_opts := steep_repl.init_options(v_method.method, p_options);
  -- the options the caller named, checked: a resume changes only those
  v_given := coalesce((SELECT jsonb_object_agg(key, value) FROM jsonb_each(v_opts)
                        WHERE coalesce(p_options, '{}') ? key AND key <> 'resume'), '{}');
  PERFORM steep_repl.require_local_node('start_init', p_target, 'node start', 'the target node');
  IF p_source = p_target THEN
    RAISE EXCEPTION 'node % cannot be initialized from itself', quote_ident(p_target) USING ERRCODE = 'SR004';
  END IF;

  -- Serializes concurrent start/cancel calls for this node.
  SELECT * INTO v_target FROM steep_repl.nodes WHERE node_id = p_target FOR UPDATE;

  IF EXISTS (SELECT 1 FROM steep_repl.init_job(p_target)) THEN
    RAISE EXCEPTION 'an initialization of node % is already queued or running', quote_ident(p_target)
      USING ERRCODE = 'SR006', HINT = 'follow it with steep-repl node progress, or stop it with steep-repl node cancel';
  END IF;
  IF (SELECT in_progress FROM steep_repl.init_states WHERE state = v_target.init_state) THEN
    RAISE EXCEPTION 'node % is already %', quote_ident(p_target), v_target.init_state
      USING ERRCODE = 'SR006', HINT = 'follow it with steep-repl node progress, or stop it with steep-repl node cancel';
  END IF;
  IF v_resume AND v_target.init_state <> 'failed' THEN
    RAISE EXCEPTION 'node % is %: only a failed initialization can be resumed', quote_ident(p_target), v_target.init_state
      USING ERRCODE = 'SR004';
  END IF;
  IF v_resume AND v_target.init_source_node IS DISTINCT FROM p_source THEN
    RAISE EXCEPTION 'the failed initialization of node % copied from %, not %', quote_ident(p_target),
      quote_ident(v_target.init_source_node), quote_ident(p_source)
      USING ERRCODE = 'SR004', HINT = 'resume it from its own source, or cancel it and start again';
  END IF;
  IF v_resume AND v_method.method IS DISTINCT FROM (SELECT method FROM steep_repl.init_progress WHERE node_id = p_target) THEN
    RAISE EXCEPTION 'the failed initialization of node % used method %, not %', quote_ident(p_target),
      (SELECT method FROM steep_repl.init_progress WHERE node_id = p_target), v_method.method
      USING ERRCODE = 'SR004', HINT = 'resume it with its own method, or cancel it and start again';
  END IF;
  -- A synchronized node is initialized again by node reinit --full (or by
  -- detaching it first, then a start that empties its tables).
  IF v_target.init_state IN ('synchronized', 'diverged') THEN
    RAISE EXCEPTION 'node % is already % (initialized from %)', quote_ident(p_target), v_target.init_state,
      coalesce(quote_ident(v_target.init_source_node), 'a node no longer registered')
      USING ERRCODE = 'SR003',
            HINT = format('to copy it again: steep-repl node reinit %s --full (SQL: SELECT steep_repl.start_reinit(%L, ''{"full": true}'')) '
                          || 'with its method, or --tables a,b for some tables while the others keep replicating; to start over from '
                          || 'another node: steep-repl node detach %s, then steep-repl node start %s --from %s --force',
                          steep_repl.shell_word(p_target), p_target, steep_repl.shell_word(p_target), steep_repl.shell_word(p_target),
                          steep_repl.shell_word(p_source));
  END IF;
  IF v_target.init_state = 'failed' AND NOT v_resume THEN
    RAISE EXCEPTION 'the last initialization of node % failed', quote_ident(p_target)
      USING ERRCODE = 'SR003', HINT = steep_repl.init_resume_hint(p_target);
  END IF;

  -- What the method cannot start without (two-phase: the snapshot), given
  -- now or, on resume, by the run that failed.
  SELECT string_agg(format('%s: %s', s.option, coalesce(s.expected, s.description)), '; ' ORDER BY r.n) INTO v_missing
    FROM unnest(v_method.required) WITH ORDINALITY r(option, n)
    JOIN steep_repl.init_option_specs s ON s.option = r.option
   WHERE coalesce(jsonb_typeof(CASE WHEN v_resume
                                    THEN (SELECT p.options FROM steep_repl.init_progress p WHERE p.node_id = p_target) || v_given
                                    ELSE v_opts END -> r.option), 'null') = 'null';
  IF v_missing IS NOT NULL THEN
    RAISE EXCEPTION 'method % needs option %', v_method.method, v_missing
      USING ERRCODE = 'SR004',
            HINT = format('e.g. SELECT steep_repl.start_init(%L, %L, %L, %L)', p_target, p_source, v_method.method,
                          (SELECT jsonb_object_agg(o, '...') FROM unnest(v_method.required) o)::text);
  END IF;

  UPDATE steep_repl.nodes SET init_source_node = p_source WHERE node_id = p_target;
  PERFORM steep_repl.transition(p_target, 'preparing', jsonb_build_object(
    'reason', CASE WHEN v_resume THEN 'init resumed' ELSE 'init started' END,
    'source_node', p_source, 'method', v_method.method));

  IF v_resume THEN
    UPDATE steep_repl.init_progress
       SET phase = 'preparing', error = NULL, failure_kind = NULL, cancel_requested_at = NULL,
           options = options || v_given, updated_at = now()
     WHERE node_id = p_target
    RETURNING options INTO v_opts;
  ELSE
    DELETE FROM steep_repl.init_table_progress WHERE node_id = p_target;
    DELETE FROM steep_repl.init_progress WHERE node_id = p_target;
  END IF;
  INSERT INTO steep_repl.init_progress (node_id, source_node_id, method, phase, options, workers_max)
  VALUES (p_target, p_source, v_method.method, 'preparing', v_opts - 'resume', (v_opts ->> 'parallel')::int)
  ON CONFLICT (node_id) DO NOTHING;
  INSERT INTO steep_repl.init_method_state (node_id, replication_name, slot_name)
  VALUES (p_target, v_name, v_name)
  ON CONFLICT (node_id) DO NOTHING;

  -- manual: the node waits in preparing for the DBA's restore; its job
  -- comes with complete_init
  IF v_method.method = 'manual' THEN
    UPDATE steep_repl.init_method_state
       SET backup = v_opts ->> 'backup', expires_at = now() + make_interval(secs => (v_opts ->> 'expires')::bigint), updated_at = now()
     WHERE node_id = p_target;
  ELSE
    v_job := steep_repl.enqueue(v_method.task, jsonb_build_object('node_id', p_target, 'source_node_id', p_source),
                                'init:' || p_target, 25);
    UPDATE steep_repl.init_progress SET job_id = v_job WHERE node_id = p_target;
  END IF;

  PERFORM steep_repl.emit_event('init.started', p_target, jsonb_build_object(
    'source_node', p_source, 'method', v_method.method, 'options', v_opts, 'job_id', v_job, 'resume', v_resume));

  RETURN jsonb_build_object(
    'node_id', p_target,
    'source_node_id', p_source,
    'method', v_method.method,
    'state', 'preparing',
    'job_id', v_job,
    'options', v_opts,
    'replication_name', v_name,
    'follow', jsonb_build_object(
      'status', format('SELECT steep_repl.init_status(%L)', p_target),
      'channels', jsonb_build_array('steep_repl_progress', 'steep_repl_state', 'steep_repl_events'),
      'cancel', format('SELECT steep_repl.cancel_init(%L)', p_target)));
END $$;
