-- The tables among p_known (a JSON array of {schema_name, table_name,
-- label}) that a scope names, for verify, reinit and merge: {} or {"full":
-- true}: all of them; {"tables": [names]}: those, each 'schema.table' or
-- 'table' as SQL writes it (quoted parts allowed, parsed with parse_ident;
-- an unqualified name is the one table of that name), or failing that the
-- name exactly as written; {"schema": "s"}: the tables in that schema. An
-- unknown or ambiguous name is refused (SR004) before anything is done.
-- p_context says in messages what the known tables are, e.g. 'node b
-- receives from node a'.
CREATE OR REPLACE FUNCTION steep_repl.pick_tables(p_known jsonb, p_scope jsonb, p_context text)
RETURNS TABLE (schema_name text, table_name text, label text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_scope jsonb := coalesce(p_scope, '{}');
  v_context text := coalesce(p_context, 'known here');
  v_known jsonb := coalesce(p_known, '[]');
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
  IF EXISTS (SELECT 1 FROM jsonb_object_keys(v_scope) k WHERE k NOT IN ('tables', 'schema', 'full')) THEN
    RAISE EXCEPTION 'unknown table scope %', (SELECT string_agg(quote_literal(k), ', ') FROM jsonb_object_keys(v_scope) k
                                               WHERE k NOT IN ('tables', 'schema', 'full'))
      USING ERRCODE = 'SR004', HINT = 'a scope names tables ({"tables": ["s.t", ...]}) or a schema ({"schema": "s"})';
  END IF;
  IF (SELECT count(*) FROM jsonb_object_keys(v_scope) k WHERE v_scope -> k <> 'null' AND v_scope -> k <> 'false') > 1 THEN
    RAISE EXCEPTION 'name tables or a schema, not both' USING ERRCODE = 'SR004';
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

  RETURN QUERY SELECT p ->> 'schema_name', p ->> 'table_name', p ->> 'label'
               FROM jsonb_array_elements(v_picked) p ORDER BY 1, 2;
END $$;
