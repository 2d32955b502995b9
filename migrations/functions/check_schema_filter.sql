-- A schema filter must name user schemas that exist here (or, when the
-- comparison also knows the peer's set, on one of the two nodes).
CREATE OR REPLACE FUNCTION steep_repl.check_schema_filter(p_schemas text[], p_known_elsewhere text[] DEFAULT NULL)
RETURNS void LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_names text;
BEGIN
  IF p_schemas IS NULL THEN
    RETURN;
  END IF;
  IF cardinality(p_schemas) = 0 OR EXISTS (SELECT 1 FROM unnest(p_schemas) s WHERE s IS NULL OR s = '') THEN
    RAISE EXCEPTION 'the schema filter must name at least one schema and no empty name'
      USING ERRCODE = 'SR004';
  END IF;
  SELECT string_agg(quote_ident(s), ', ' ORDER BY s) INTO v_names
    FROM unnest(p_schemas) s WHERE NOT steep_repl.is_user_schema(s);
  IF v_names IS NOT NULL THEN
    RAISE EXCEPTION 'the schema filter names %, which steep-repl never compares (system schemas and its own)', v_names
      USING ERRCODE = 'SR004';
  END IF;
  SELECT string_agg(quote_ident(s), ', ' ORDER BY s) INTO v_names
    FROM unnest(p_schemas) s
   WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = s)
     AND NOT (s = ANY (coalesce(p_known_elsewhere, '{}')));
  IF v_names IS NOT NULL THEN
    RAISE EXCEPTION 'schema % does not exist in database %', v_names,
                    quote_ident(current_database())
                    || CASE WHEN p_known_elsewhere IS NOT NULL THEN ' nor in the source''s fingerprint set' ELSE '' END
      USING ERRCODE = 'SR004',
            HINT = coalesce('user schemas there: ' || (SELECT string_agg(quote_ident(nspname), ', ' ORDER BY nspname)
                                                       FROM pg_catalog.pg_namespace WHERE steep_repl.is_user_schema(nspname)),
                            'the database has no user schema');
  END IF;
END $$;
