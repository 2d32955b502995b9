-- Applies the plan in the caller's transaction, re-compares, and records
-- schema.sync_applied. Any failure raises and leaves nothing changed.
CREATE OR REPLACE FUNCTION steep_repl.apply_schema_sync(p_source jsonb, p_schemas text[], p_source_node text, p_target_node text)
RETURNS TABLE (step integer, schema_name text, table_name text, ddl text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_plan jsonb;
  v_item jsonb;
  v_left text;
BEGIN
  SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.step), '[]') INTO v_plan
    FROM steep_repl.schema_sync_plan(p_source, p_schemas) p;
  FOR v_item IN SELECT * FROM jsonb_array_elements(v_plan) LOOP
    BEGIN
      EXECUTE v_item ->> 'ddl';
    EXCEPTION WHEN OTHERS THEN
      RAISE EXCEPTION 'schema sync step % on table %.% failed: %', v_item ->> 'step',
        quote_ident(v_item ->> 'schema_name'), quote_ident(v_item ->> 'table_name'), SQLERRM
        USING ERRCODE = 'SR005',
              DETAIL = 'statement: ' || (v_item ->> 'ddl'),
              HINT = 'nothing was changed (the plan runs in one transaction); align this table by hand or remove what blocks the statement';
    END;
  END LOOP;
  SELECT string_agg(format('%I.%I: %s', c.schema_name, c.table_name, c.differences -> 0 ->> 'detail'), '; ') INTO v_left
    FROM steep_repl.compare_fingerprints(p_source, p_schemas) c
   WHERE c.blocking AND c.status <> 'NOT_REPLICATED';
  IF v_left IS NOT NULL THEN
    RAISE EXCEPTION 'schema sync applied its plan but tables still differ: %', v_left
      USING ERRCODE = 'SR005', HINT = 'nothing was changed (the plan runs in one transaction); align these tables by hand';
  END IF;
  IF jsonb_array_length(v_plan) > 0 THEN
    PERFORM steep_repl.emit_event('schema.sync_applied', p_target_node, jsonb_build_object(
      'source_node', p_source_node, 'target_node', p_target_node, 'statements', jsonb_array_length(v_plan),
      'tables', (SELECT jsonb_agg(DISTINCT format('%I.%I', e ->> 'schema_name', e ->> 'table_name')) FROM jsonb_array_elements(v_plan) e),
      'ddl', (SELECT jsonb_agg(e -> 'ddl' ORDER BY (e ->> 'step')::integer) FROM jsonb_array_elements(v_plan) e)));
  END IF;
  RETURN QUERY
  SELECT (e ->> 'step')::integer, e ->> 'schema_name', e ->> 'table_name', e ->> 'ddl'
    FROM jsonb_array_elements(v_plan) e ORDER BY (e ->> 'step')::integer;
END $$;
