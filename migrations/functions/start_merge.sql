-- Starts an analysis or a merge of node A (this database's node, whose
-- agent coordinates) with node B (SPEC 4.6): a merge_runs row, one
-- merge_tables row per table in scope and a merge_nodes job. Every refusal
-- comes before anything is written. Options: strategy (prefer-a, prefer-b,
-- last-modified, manual), analyze, dry_run, apply (manual), column
-- (last-modified), tables or schema, quiesce, timeout (seconds or an
-- interval, 1 s .. 1 day, default 3600). Mode: analyze, dry_run, record
-- (manual without apply) or merge; only merge writes to the nodes, so the
-- others run in any state, but one run of A at a time.
CREATE OR REPLACE FUNCTION steep_repl.start_merge(p_node_a text, p_node_b text, p_options jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_opts jsonb := coalesce(p_options, '{}');
  v_known text[] := ARRAY['strategy', 'analyze', 'dry_run', 'apply', 'column', 'tables', 'schema', 'quiesce', 'timeout'];
  v_node steep_repl.nodes;
  v_analyze boolean;
  v_dry_run boolean;
  v_apply boolean;
  v_quiesce boolean;
  v_strategy text;
  v_column text;
  v_timeout bigint;
  v_mode text;
  v_scope jsonb;
  v_tables jsonb;
  v_bad text;
  v_record steep_repl.merge_runs;
  v_unresolved bigint;
  v_busy bigint;
  v_merge_id bigint;
  v_job_id bigint;
  v_pair text := format('%s %s', steep_repl.shell_word(p_node_a), steep_repl.shell_word(coalesce(p_node_b, '')));
BEGIN
  PERFORM steep_repl.require_local_node('start_merge', p_node_a, 'node merge', 'node A');
  IF jsonb_typeof(v_opts) <> 'object' THEN
    RAISE EXCEPTION 'merge options are a JSON object, got %', v_opts USING ERRCODE = 'SR004';
  END IF;
  SELECT string_agg(quote_literal(k), ', ' ORDER BY k) INTO v_bad FROM jsonb_object_keys(v_opts) k WHERE NOT k = ANY (v_known);
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION 'unknown merge option %', v_bad
      USING ERRCODE = 'SR004', HINT = 'merge options: ' || array_to_string(v_known, ', ');
  END IF;
  -- null is the same as left out
  v_opts := jsonb_strip_nulls(v_opts);
  v_analyze := v_opts ? 'analyze' AND steep_repl.option_value(steep_repl.merge_option_spec('analyze', 'boolean'), v_opts -> 'analyze')::boolean;
  v_dry_run := v_opts ? 'dry_run' AND steep_repl.option_value(steep_repl.merge_option_spec('dry_run', 'boolean'), v_opts -> 'dry_run')::boolean;
  v_apply := v_opts ? 'apply' AND steep_repl.option_value(steep_repl.merge_option_spec('apply', 'boolean'), v_opts -> 'apply')::boolean;
  v_quiesce := v_opts ? 'quiesce' AND steep_repl.option_value(steep_repl.merge_option_spec('quiesce', 'boolean'), v_opts -> 'quiesce')::boolean;
  IF v_opts ? 'strategy' THEN
    v_strategy := steep_repl.option_value(steep_repl.merge_option_spec('strategy', 'choice'), v_opts -> 'strategy') #>> '{}';
  END IF;
  v_timeout := (steep_repl.option_value(steep_repl.merge_option_spec('timeout', 'duration'), coalesce(v_opts -> 'timeout', '3600')) #>> '{}')::bigint;
  IF v_opts ? 'column' AND (jsonb_typeof(v_opts -> 'column') <> 'string' OR btrim(v_opts ->> 'column') = '') THEN
    RAISE EXCEPTION 'option column must be a column name, got %', v_opts -> 'column' USING ERRCODE = 'SR004';
  END IF;
  v_column := v_opts ->> 'column';

  IF v_analyze AND v_strategy IS NOT NULL THEN
    RAISE EXCEPTION 'an analysis takes no strategy: name either analyze or a strategy' USING ERRCODE = 'SR004',
      HINT = 'steep-repl node merge A B --analyze counts; --strategy S [--dry-run] merges';
  END IF;
  IF NOT v_analyze AND v_strategy IS NULL THEN
    RAISE EXCEPTION 'name what to do: analyze, or a strategy (prefer-a, prefer-b, last-modified, manual)' USING ERRCODE = 'SR004',
      HINT = format('start with the read-only analysis: steep-repl node merge %s --analyze', v_pair);
  END IF;
  IF v_dry_run AND v_strategy IS NULL THEN
    RAISE EXCEPTION 'a dry run shows what a strategy would write: name the strategy' USING ERRCODE = 'SR004';
  END IF;
  IF v_apply AND v_strategy IS DISTINCT FROM 'manual' THEN
    RAISE EXCEPTION 'apply applies the resolutions of a manual merge: it takes strategy manual, not %', coalesce(v_strategy, 'analyze')
      USING ERRCODE = 'SR004';
  END IF;
  IF v_apply AND v_dry_run THEN
    RAISE EXCEPTION 'apply and dry_run do not go together: a dry run of the recorded conflicts is the record itself'
      USING ERRCODE = 'SR004', HINT = format('see them with SELECT * FROM steep_repl.merge_conflicts WHERE merge_id = <the record run>');
  END IF;
  IF v_column IS NOT NULL AND v_strategy IS DISTINCT FROM 'last-modified' THEN
    RAISE EXCEPTION 'option column is for strategy last-modified only' USING ERRCODE = 'SR004';
  END IF;
  IF v_strategy = 'last-modified' AND v_column IS NULL THEN
    RAISE EXCEPTION 'strategy last-modified needs the column that says when a row was last changed (option column)'
      USING ERRCODE = 'SR004', HINT = 'e.g. --column updated_at: a timestamptz, timestamp or date column of every table';
  END IF;
  IF p_node_b IS NOT DISTINCT FROM p_node_a THEN
    RAISE EXCEPTION 'node % cannot be merged with itself', quote_ident(p_node_a) USING ERRCODE = 'SR004';
  END IF;
  PERFORM steep_repl.get_node(p_node_b);
  v_mode := CASE WHEN v_analyze THEN 'analyze' WHEN v_dry_run THEN 'dry_run'
                 WHEN v_strategy = 'manual' AND NOT v_apply THEN 'record' ELSE 'merge' END;

  -- Serializes start, cancel and finish for node A.
  SELECT * INTO v_node FROM steep_repl.nodes WHERE node_id = p_node_a FOR UPDATE;

  -- A manual merge applies the latest record of the pair; its scope unless one is given.
  IF v_apply THEN
    SELECT * INTO v_record FROM steep_repl.merge_runs
     WHERE node_a = p_node_a AND node_b = p_node_b AND mode = 'record' ORDER BY merge_id DESC LIMIT 1;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'no conflicts of nodes % and % are recorded: record them first', quote_ident(p_node_a), quote_ident(p_node_b)
        USING ERRCODE = 'SR003', HINT = format('steep-repl node merge %s --strategy manual', v_pair);
    END IF;
    IF v_record.state <> 'resolving' THEN
      RAISE EXCEPTION 'the latest record of nodes % and %, merge %, is %: there are no conflicts to apply', quote_ident(p_node_a),
        quote_ident(p_node_b), v_record.merge_id, v_record.state
        USING ERRCODE = 'SR003', HINT = format('record them again: steep-repl node merge %s --strategy manual', v_pair);
    END IF;
  END IF;
  v_scope := jsonb_strip_nulls(jsonb_build_object('tables', v_opts -> 'tables', 'schema', v_opts -> 'schema'));
  IF v_apply AND v_scope = '{}' THEN
    v_scope := v_record.scope;
  END IF;

  SELECT coalesce(jsonb_agg(jsonb_build_object('schema_name', t.schema_name, 'table_name', t.table_name, 'label', t.label)
                            ORDER BY t.schema_name, t.table_name), '[]')
    INTO v_tables
    FROM steep_repl.merge_scope_tables(v_scope, format('node %s can replicate', quote_ident(p_node_a))) t;

  -- Rows are matched by primary key.
  SELECT string_agg(t ->> 'label', ', ') INTO v_bad FROM jsonb_array_elements(v_tables) t
   WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                      WHERE i.indrelid = format('%I.%I', t ->> 'schema_name', t ->> 'table_name')::regclass AND i.indisprimary);
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION 'table(s) without a primary key: %: a merge matches rows by primary key', v_bad
      USING ERRCODE = 'SR004', HINT = 'add a primary key on both nodes, or leave the tables out (--tables, --schema)';
  END IF;

  IF v_strategy = 'last-modified' THEN
    SELECT string_agg(format('%s %s', t ->> 'label', coalesce('has column ' || quote_ident(v_column) || ' of type ' || format_type(a.atttypid, a.atttypmod),
                                                                'has no column ' || quote_ident(v_column))), '; ')
      INTO v_bad
      FROM jsonb_array_elements(v_tables) t
      LEFT JOIN pg_catalog.pg_attribute a
        ON a.attrelid = format('%I.%I', t ->> 'schema_name', t ->> 'table_name')::regclass
       AND a.attname = v_column AND a.attnum > 0 AND NOT a.attisdropped
     WHERE a.atttypid IS NULL
        OR a.atttypid NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype);
    IF v_bad IS NOT NULL THEN
      RAISE EXCEPTION 'last-modified compares a timestamptz, timestamp or date column, but %', v_bad
        USING ERRCODE = 'SR004', HINT = 'name a column every merged table has with such a type, or leave those tables out';
    END IF;
  END IF;

  -- A run whose job is gone (removed by hand, or out of attempts) is over.
  UPDATE steep_repl.merge_runs r
     SET state = 'failed', phase = 'done', finished_at = now(), updated_at = now(), failure_kind = coalesce(failure_kind, 'error'),
         error = coalesce(error, 'its job ended without recording a result')
   WHERE r.node_a = p_node_a AND r.state IN ('queued', 'running')
     AND NOT EXISTS (SELECT 1 FROM steep_repl.merge_job(p_node_a) j
                     WHERE j.job_id = r.job_id AND (j.locked_at IS NOT NULL OR j.attempts < j.max_attempts));
  SELECT merge_id INTO v_busy FROM steep_repl.merge_runs WHERE node_a = p_node_a AND state IN ('queued', 'running') ORDER BY merge_id LIMIT 1;
  IF v_busy IS NOT NULL
     OR EXISTS (SELECT 1 FROM steep_repl.merge_job(p_node_a) j WHERE j.locked_at IS NOT NULL OR j.attempts < j.max_attempts) THEN
    RAISE EXCEPTION 'a merge of node % is already queued or running%', quote_ident(p_node_a), coalesce(' (merge ' || v_busy || ')', '')
      USING ERRCODE = 'SR006',
            HINT = format('follow it with SELECT steep_repl.latest_merge(%L), or stop it with SELECT steep_repl.cancel_merge(%L)', p_node_a, p_node_a);
  END IF;

  IF v_mode = 'merge' THEN
    IF current_setting('server_version_num')::int < 160000 THEN
      RAISE EXCEPTION 'a merge needs PostgreSQL 16 or later on both nodes (subscriptions with origin = none); node % runs %',
        quote_ident(p_node_a), current_setting('server_version')
        USING ERRCODE = 'SR004', HINT = 'the analysis (--analyze) and a dry run work on any version';
    END IF;
    IF EXISTS (SELECT 1 FROM steep_repl.init_job(p_node_a)) THEN
      RAISE EXCEPTION 'an initialization or reinit of node % is queued or running', quote_ident(p_node_a)
        USING ERRCODE = 'SR006', HINT = 'follow it with steep-repl node progress, or stop it with steep-repl node cancel';
    END IF;
    IF NOT (v_node.init_state = 'uninitialized'
            OR (v_node.init_state = 'failed' AND (SELECT method FROM steep_repl.init_progress WHERE node_id = p_node_a) = 'merge')) THEN
      RAISE EXCEPTION 'node % is %: only an uninitialized node, or one whose merge failed, is merged', quote_ident(p_node_a), v_node.init_state
        USING ERRCODE = 'SR003',
              HINT = CASE
                WHEN v_node.init_state = 'failed' THEN 'its initialization failed: ' || steep_repl.init_resume_hint(p_node_a)
                WHEN (SELECT in_progress FROM steep_repl.init_states WHERE state = v_node.init_state)
                  THEN 'wait until it has finished (steep-repl node progress), or stop it with steep-repl node cancel'
                ELSE format('a merge brings two nodes that are not replicating yet together; detach this one first (steep-repl node detach %s)',
                            steep_repl.shell_word(p_node_a)) END;
    END IF;
  END IF;

  IF v_apply THEN
    SELECT count(*) INTO v_unresolved FROM steep_repl.merge_conflicts c
     WHERE c.merge_id = v_record.merge_id AND c.resolution IS NULL
       AND EXISTS (SELECT 1 FROM jsonb_array_elements(v_tables) t
                    WHERE t ->> 'schema_name' = c.schema_name AND t ->> 'table_name' = c.table_name);
    IF v_unresolved > 0 THEN
      -- SR004 as bad input: nothing starts, the DBA resolves and asks again (exit 2)
      RAISE EXCEPTION '% conflicts of merge % are unresolved', v_unresolved, v_record.merge_id
        USING ERRCODE = 'SR004',
              HINT = format('resolve every one first: UPDATE steep_repl.merge_conflicts SET resolution = ''a'' (or ''b'', or ''row'' with resolved_row) '
                            'WHERE merge_id = %s AND resolution IS NULL AND ...; or SELECT steep_repl.resolve_merge_conflicts(%s, ''a'')',
                            v_record.merge_id, v_record.merge_id);
    END IF;
  END IF;

  INSERT INTO steep_repl.merge_runs (node_a, node_b, mode, strategy, options, scope, tables_total)
  VALUES (p_node_a, p_node_b, v_mode, v_strategy,
          jsonb_strip_nulls(jsonb_build_object('column', v_column, 'tables', v_scope -> 'tables', 'schema', v_scope -> 'schema',
                                               'quiesce', v_quiesce, 'timeout', v_timeout,
                                               'resolutions_of', CASE WHEN v_apply THEN v_record.merge_id END)),
          v_scope, jsonb_array_length(v_tables))
  RETURNING merge_id INTO v_merge_id;
  INSERT INTO steep_repl.merge_tables (merge_id, schema_name, table_name)
  SELECT v_merge_id, t ->> 'schema_name', t ->> 'table_name' FROM jsonb_array_elements(v_tables) t;

  v_job_id := steep_repl.enqueue('merge_nodes', jsonb_build_object('merge_id', v_merge_id, 'node_id', p_node_a), 'merge:' || p_node_a,
                                 CASE WHEN v_mode = 'merge' THEN 25 ELSE 5 END);
  UPDATE steep_repl.merge_runs SET job_id = v_job_id WHERE merge_id = v_merge_id;

  PERFORM steep_repl.emit_event('merge.started', p_node_a, jsonb_build_object(
    'merge_id', v_merge_id, 'node_a', p_node_a, 'node_b', p_node_b, 'mode', v_mode, 'strategy', v_strategy, 'job_id', v_job_id,
    'options', (SELECT options FROM steep_repl.merge_runs WHERE merge_id = v_merge_id),
    'tables_total', jsonb_array_length(v_tables),
    'tables', (SELECT jsonb_agg(t -> 'label') FROM (SELECT t FROM jsonb_array_elements(v_tables) t LIMIT 50) l)));

  RETURN jsonb_build_object(
    'merge_id', v_merge_id,
    'node_a', p_node_a,
    'node_b', p_node_b,
    'mode', v_mode,
    'strategy', v_strategy,
    'tables', (SELECT jsonb_agg(t -> 'label') FROM jsonb_array_elements(v_tables) t),
    'job_id', v_job_id,
    'follow', jsonb_build_object(
      'status', format('SELECT steep_repl.merge_status(%s)', v_merge_id),
      'channels', jsonb_build_array('steep_repl_progress', 'steep_repl_events', 'steep_repl_state'),
      'cancel', format('SELECT steep_repl.cancel_merge(%L)', p_node_a)));
END $$;
