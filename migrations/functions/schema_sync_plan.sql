CREATE OR REPLACE FUNCTION steep_repl.schema_sync_plan(p_source jsonb, p_schemas text[] DEFAULT NULL)
RETURNS TABLE (step integer, schema_name text, table_name text, ddl text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  v_sources jsonb;
  v_targets jsonb;
  v_key text;
  v_src jsonb;
  v_tgt jsonb;
  v_stmts text[];
  v_fks jsonb := '[]';
  v_stash integer := 0;
  v_stmt text;
  r record;
BEGIN
  SELECT jsonb_object_agg(format('%I.%I', s.schema_name, s.table_name), to_jsonb(s)) INTO v_sources
    FROM steep_repl.fingerprint_rows(p_source) s;
  SELECT jsonb_object_agg(format('%I.%I', t.schema_name, t.table_name), to_jsonb(t)) INTO v_targets
    FROM steep_repl.table_fingerprints(p_schemas, false) t;
  step := 0;
  -- Partitions are not compared (compare_fingerprints): a table created here
  -- gets the source's partitions, an existing one keeps the target's own.
  -- A NOT_REPLICATED relation is left as it is, except that a missing
  -- unlogged table is created like any other (the schema stays complete).
  FOR r IN SELECT c.schema_name, c.table_name, c.status
             FROM steep_repl.compare_fingerprints(p_source, p_schemas) c
            WHERE c.blocking
              AND (c.status <> 'NOT_REPLICATED'
                   OR (NOT (coalesce(v_targets, '{}') ? format('%I.%I', c.schema_name, c.table_name))
                       AND v_sources -> format('%I.%I', c.schema_name, c.table_name) -> 'table_facts' ->> 'kind' IN ('table', 'partitioned')))
            ORDER BY c.status = 'MISMATCH', c.schema_name, c.table_name LOOP
    v_key := format('%I.%I', r.schema_name, r.table_name);
    v_src := v_sources -> v_key;
    v_tgt := v_targets -> v_key;
    schema_name := r.schema_name;
    table_name := r.table_name;
    v_stmts := '{}';
    IF v_tgt IS NULL THEN
      IF to_regnamespace(quote_ident(r.schema_name)) IS NULL THEN
        v_stmts := ARRAY[format('CREATE SCHEMA IF NOT EXISTS %I', r.schema_name)];
      END IF;
      v_stmts := v_stmts || steep_repl.create_table_ddl(v_src);
      v_fks := v_fks || jsonb_build_array(v_src);
      SELECT v_stmts || coalesce(array_agg(d.ddl ORDER BY d.depth, d.name, d.n), '{}') INTO v_stmts
        FROM (SELECT coalesce((e.value -> 'definition' ->> 'partition_depth')::integer, 1) AS depth, e.key AS name, x.ddl, x.n
                FROM jsonb_each(v_sources) e
               CROSS JOIN LATERAL unnest(steep_repl.create_table_ddl(e.value)) WITH ORDINALITY x(ddl, n)
               WHERE coalesce(e.value -> 'definition' ->> 'partition_root', e.value -> 'definition' ->> 'partition_of') = v_key) d;
    ELSIF steep_repl.needs_rebuild(v_src, v_tgt) THEN
      v_stash := v_stash + 1;
      v_stmts := steep_repl.rebuild_table_ddl(v_src, v_tgt, 'steep_repl_stash_' || v_stash);
      v_fks := v_fks || jsonb_build_array(v_src);
    ELSE
      v_stmts := steep_repl.alter_table_ddl(v_src, v_tgt);
    END IF;
    FOREACH v_stmt IN ARRAY v_stmts LOOP
      step := step + 1;
      ddl := v_stmt;
      RETURN NEXT;
    END LOOP;
  END LOOP;
  FOR v_src IN SELECT * FROM jsonb_array_elements(v_fks) LOOP
    schema_name := v_src ->> 'schema_name';
    table_name := v_src ->> 'table_name';
    FOREACH v_stmt IN ARRAY steep_repl.foreign_key_ddl(v_src) LOOP
      step := step + 1;
      ddl := v_stmt;
      RETURN NEXT;
    END LOOP;
  END LOOP;
END $$;
