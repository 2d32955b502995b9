-- The tables a merge compares, on node A: {} all that logical replication
-- can carry here (replicated_tables), {"tables": [names]} or {"schema": "s"}
-- among them, names read as scope_tables reads them ('s.t', 't', quoted
-- parts, else the name exactly as written). Unknown and ambiguous names,
-- and a scope with no table, are refused (SR004). p_known (a JSON array of
-- {schema_name, table_name, label}) replaces replicated_tables().
CREATE OR REPLACE FUNCTION steep_repl.merge_scope_tables(p_scope jsonb DEFAULT '{}', p_context text DEFAULT NULL, p_known jsonb DEFAULT NULL)
RETURNS TABLE (schema_name text, table_name text, label text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_scope jsonb := coalesce(p_scope, '{}');
  v_context text := coalesce(p_context, 'this node can replicate');
  v_known jsonb := p_known;
  v_names jsonb;
  v_name text;
  v_parts text[];
  v_found jsonb;
  v_picked jsonb := '[]';
  v_schema text;
BEGIN
  IF jsonb_typeof(v_scope) <> 'object' THEN
    RAISE EXCEPTION 'a table scope is a JSON object, got %', v_scope USING ERRCODE = 'SR004';
  END IF;
  IF EXISTS (SELECT 1 FROM jsonb_object_keys(v_scope) k WHERE k NOT IN ('tables', 'schema')) THEN
    RAISE EXCEPTION 'unknown table scope %', (SELECT string_agg(quote_literal(k), ', ') FROM jsonb_object_keys(v_scope) k
                                               WHERE k NOT IN ('tables', 'schema'))
      USING ERRCODE = 'SR004', HINT = 'a scope names tables ({"tables": ["s.t", ...]}) or a schema ({"schema": "s"})';
  END IF;
  IF coalesce(v_scope -> 'tables', 'null') <> 'null' AND coalesce(v_scope -> 'schema', 'null') <> 'null' THEN
    RAISE EXCEPTION 'name tables or a schema, not both' USING ERRCODE = 'SR004';
  END IF;

  IF v_known IS NULL THEN
    SELECT coalesce(jsonb_agg(jsonb_build_object('schema_name', t.schema_name, 'table_name', t.table_name, 'label', t.label)), '[]')
      INTO v_known FROM steep_repl.replicated_tables() t;
  END IF;

  IF coalesce(v_scope -> 'tables', 'null') <> 'null' THEN
    v_names := v_scope -> 'tables';
    IF jsonb_typeof(v_names) <> 'array' OR jsonb_array_length(v_names) = 0
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(v_names) e WHERE jsonb_typeof(e) <> 'string' OR btrim(e #>> '{}') = '') THEN
      RAISE EXCEPTION 'tables must be a non-empty list of table names, got %', v_names USING ERRCODE = 'SR004';
    END IF;
    FOR v_name IN SELECT e FROM jsonb_array_elements_text(v_names) e LOOP
      BEGIN
        v_parts := parse_ident(v_name);
      EXCEPTION WHEN invalid_parameter_value THEN
        v_parts := NULL;
      END;
      IF cardinality(v_parts) > 2 THEN
        RAISE EXCEPTION 'invalid table name %: expected schema.table or table', quote_literal(v_name) USING ERRCODE = 'SR004';
      END IF;
      SELECT coalesce(jsonb_agg(k), '[]') INTO v_found FROM jsonb_array_elements(v_known) k
       WHERE (cardinality(v_parts) = 1 AND k ->> 'table_name' = v_parts[1])
          OR (cardinality(v_parts) = 2 AND k ->> 'schema_name' = v_parts[1] AND k ->> 'table_name' = v_parts[2]);
      -- written as it is named, unquoted: "Order Items", My.Table
      IF jsonb_array_length(v_found) = 0 THEN
        SELECT coalesce(jsonb_agg(k), '[]') INTO v_found FROM jsonb_array_elements(v_known) k
         WHERE k ->> 'table_name' = v_name OR (k ->> 'schema_name') || '.' || (k ->> 'table_name') = v_name;
      END IF;
      IF jsonb_array_length(v_found) > 1 THEN
        RAISE EXCEPTION 'table name % is ambiguous: %', quote_literal(v_name),
          (SELECT string_agg(f ->> 'label', ', ' ORDER BY f ->> 'label') FROM jsonb_array_elements(v_found) f)
          USING ERRCODE = 'SR004', HINT = 'qualify it with its schema';
      END IF;
      IF jsonb_array_length(v_found) = 0 THEN
        RAISE EXCEPTION 'table % is not among the tables %', quote_literal(v_name), v_context
          USING ERRCODE = 'SR004',
                HINT = CASE WHEN jsonb_array_length(v_known) = 0 THEN 'there are none'
                            ELSE 'the tables: ' || (SELECT string_agg(k ->> 'label', ', ' ORDER BY k ->> 'label')
                                                    FROM (SELECT k FROM jsonb_array_elements(v_known) k LIMIT 20) l)
                                 || CASE WHEN jsonb_array_length(v_known) > 20 THEN format(' and %s more', jsonb_array_length(v_known) - 20) ELSE '' END END;
      END IF;
      IF NOT v_picked @> v_found THEN
        v_picked := v_picked || v_found;
      END IF;
    END LOOP;
  ELSIF coalesce(v_scope -> 'schema', 'null') <> 'null' THEN
    IF jsonb_typeof(v_scope -> 'schema') <> 'string' OR btrim(v_scope ->> 'schema') = '' THEN
      RAISE EXCEPTION 'schema must be a schema name, got %', v_scope -> 'schema' USING ERRCODE = 'SR004';
    END IF;
    v_schema := v_scope ->> 'schema';
    -- as named, else as SQL writes it ("Sales", sales)
    IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(v_known) k WHERE k ->> 'schema_name' = v_schema) THEN
      BEGIN
        v_parts := parse_ident(v_schema);
        IF cardinality(v_parts) = 1 THEN
          v_schema := v_parts[1];
        END IF;
      EXCEPTION WHEN invalid_parameter_value THEN
        NULL;
      END;
    END IF;
    SELECT coalesce(jsonb_agg(k), '[]') INTO v_picked FROM jsonb_array_elements(v_known) k WHERE k ->> 'schema_name' = v_schema;
    IF jsonb_array_length(v_picked) = 0 THEN
      RAISE EXCEPTION '%', CASE WHEN to_regnamespace(quote_ident(v_schema)) IS NULL
                                THEN format('unknown schema %s', quote_literal(v_scope ->> 'schema'))
                                ELSE format('schema %s has none of the tables %s', quote_ident(v_schema), v_context) END
        USING ERRCODE = 'SR004',
              HINT = coalesce('schemas with such tables: ' || (SELECT string_agg(DISTINCT quote_ident(k ->> 'schema_name'), ', ')
                                                              FROM jsonb_array_elements(v_known) k), 'there are none');
    END IF;
  ELSE
    v_picked := v_known;
  END IF;
  IF jsonb_array_length(v_picked) = 0 THEN
    RAISE EXCEPTION 'there is no table to merge: none of the tables %', v_context
      USING ERRCODE = 'SR004', HINT = 'a merge compares the user tables logical replication can carry (not unlogged ones)';
  END IF;

  RETURN QUERY SELECT p ->> 'schema_name', p ->> 'table_name', p ->> 'label'
               FROM jsonb_array_elements(v_picked) p ORDER BY 1, 2;
END $$;
