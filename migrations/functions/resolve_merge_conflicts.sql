-- Resolves the conflicts a manual merge recorded: every one, a table's
-- (p_table, named as scope_tables reads names) or one key's. 'a' and 'b'
-- pick a node's row; 'row' gives the row both nodes get (p_row) and needs
-- one key. check_merge_conflict checks each. Returns how many it set.
CREATE OR REPLACE FUNCTION steep_repl.resolve_merge_conflicts(p_merge_id bigint, p_resolution text, p_table text DEFAULT NULL,
                                                              p_key jsonb DEFAULT NULL, p_row jsonb DEFAULT NULL)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  v_run steep_repl.merge_runs;
  v_schema text;
  v_table text;
  v_matches bigint;
  v_count int;
BEGIN
  v_run := steep_repl.get_merge(p_merge_id);
  IF v_run.mode <> 'record' THEN
    RAISE EXCEPTION 'merge % is a % run: only the conflicts a manual merge recorded are resolved', p_merge_id, v_run.mode
      USING ERRCODE = 'SR004', HINT = format('record them: steep-repl node merge %s %s --strategy manual',
                                             steep_repl.shell_word(v_run.node_a), steep_repl.shell_word(v_run.node_b));
  END IF;
  IF v_run.state <> 'resolving' THEN
    RAISE EXCEPTION 'merge % is %: its conflicts are resolved once it has recorded them (resolving)', p_merge_id, v_run.state
      USING ERRCODE = 'SR003';
  END IF;
  IF p_resolution IS NULL OR p_resolution NOT IN ('a', 'b', 'row') THEN
    RAISE EXCEPTION 'a resolution is a (node A''s row wins), b (node B''s row wins) or row (p_row, the row both nodes get), got %',
      quote_nullable(p_resolution) USING ERRCODE = 'SR004';
  END IF;
  IF p_resolution = 'row' AND (p_row IS NULL OR p_key IS NULL) THEN
    RAISE EXCEPTION 'resolution row gives one conflict its row: name the key (p_key) and the row (p_row)' USING ERRCODE = 'SR004';
  END IF;
  IF p_resolution <> 'row' AND p_row IS NOT NULL THEN
    RAISE EXCEPTION 'resolution % takes no row (p_row): use resolution row to give one', quote_literal(p_resolution) USING ERRCODE = 'SR004';
  END IF;
  IF p_key IS NOT NULL AND jsonb_typeof(p_key) <> 'object' THEN
    RAISE EXCEPTION 'a key is a JSON object of the key columns, e.g. {"id": 42}, got %', p_key USING ERRCODE = 'SR004';
  END IF;
  IF p_table IS NOT NULL THEN
    SELECT t.schema_name, t.table_name INTO v_schema, v_table
      FROM steep_repl.merge_scope_tables(jsonb_build_object('tables', jsonb_build_array(p_table)), format('of merge %s', p_merge_id),
                                         (SELECT jsonb_agg(jsonb_build_object('schema_name', m.schema_name, 'table_name', m.table_name,
                                                                              'label', format('%I.%I', m.schema_name, m.table_name)))
                                            FROM steep_repl.merge_tables m WHERE m.merge_id = p_merge_id)) t;
  END IF;
  IF p_key IS NOT NULL THEN
    SELECT count(*) INTO v_matches FROM steep_repl.merge_conflicts c
     WHERE c.merge_id = p_merge_id AND c.key = p_key AND (v_schema IS NULL OR (c.schema_name = v_schema AND c.table_name = v_table));
    IF v_matches = 0 THEN
      RAISE EXCEPTION '%', format('merge %s recorded no conflict of key %s%s', p_merge_id, p_key, CASE WHEN v_schema IS NOT NULL THEN format(' in %I.%I', v_schema, v_table) ELSE '' END)
        USING ERRCODE = 'SR004', HINT = format('the keys are in SELECT schema_name, table_name, key FROM steep_repl.merge_conflicts WHERE merge_id = %s', p_merge_id);
    END IF;
    IF v_matches > 1 THEN
      RAISE EXCEPTION 'key % is a conflict of % tables of merge %: name the table', p_key, v_matches, p_merge_id USING ERRCODE = 'SR004';
    END IF;
  END IF;
  UPDATE steep_repl.merge_conflicts c
     SET resolution = p_resolution, resolved_row = CASE WHEN p_resolution = 'row' THEN p_row END
   WHERE c.merge_id = p_merge_id
     AND (v_schema IS NULL OR (c.schema_name = v_schema AND c.table_name = v_table))
     AND (p_key IS NULL OR c.key = p_key);
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END $$;
