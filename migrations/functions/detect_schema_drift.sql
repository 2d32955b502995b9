-- Compares and, when anything blocks, records schema.mismatch_detected on
-- this (the target) node.
CREATE OR REPLACE FUNCTION steep_repl.detect_schema_drift(p_source jsonb, p_schemas text[], p_source_node text, p_target_node text, p_mode text DEFAULT 'strict')
RETURNS TABLE (schema_name text, table_name text, status text, blocking boolean,
               source_fingerprint text, target_fingerprint text, differences jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_rows jsonb;
BEGIN
  IF p_mode IS NULL OR p_mode NOT IN ('strict', 'auto', 'manual') THEN
    RAISE EXCEPTION 'unknown schema sync mode %', quote_nullable(p_mode)
      USING ERRCODE = 'SR004', HINT = 'modes: strict, auto, manual';
  END IF;
  SELECT coalesce(jsonb_agg(to_jsonb(c)), '[]') INTO v_rows FROM steep_repl.compare_fingerprints(p_source, p_schemas) c;
  IF EXISTS (SELECT 1 FROM jsonb_array_elements(v_rows) r WHERE (r ->> 'blocking')::boolean) THEN
    PERFORM steep_repl.emit_event('schema.mismatch_detected', p_target_node, jsonb_build_object(
      'source_node', p_source_node, 'target_node', p_target_node, 'mode', p_mode,
      'tables', (SELECT jsonb_agg(jsonb_build_object('schema_name', r ->> 'schema_name', 'table_name', r ->> 'table_name',
                                                    'status', r ->> 'status', 'differences', r -> 'differences'))
                   FROM jsonb_array_elements(v_rows) r WHERE (r ->> 'blocking')::boolean)));
  END IF;
  RETURN QUERY
  SELECT r ->> 'schema_name', r ->> 'table_name', r ->> 'status', (r ->> 'blocking')::boolean,
         r ->> 'source_fingerprint', r ->> 'target_fingerprint', r -> 'differences'
    FROM jsonb_array_elements(v_rows) r;
END $$;
