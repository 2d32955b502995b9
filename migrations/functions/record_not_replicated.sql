-- The schema step records the source's relations an init goes ahead without
-- (compare_fingerprints' NOT_REPLICATED rows, in mode auto or manual):
-- [{schema_name, table_name, reason}], each given its label here.
CREATE OR REPLACE FUNCTION steep_repl.record_not_replicated(p_node_id text, p_relations jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_list jsonb;
BEGIN
  IF p_relations IS NULL OR jsonb_typeof(p_relations) <> 'array' THEN
    RAISE EXCEPTION 'not replicated relations must be a JSON array' USING ERRCODE = 'SR004';
  END IF;
  SELECT coalesce(jsonb_agg(jsonb_build_object('schema_name', r ->> 'schema_name', 'table_name', r ->> 'table_name',
                                               'label', format('%I.%I', r ->> 'schema_name', r ->> 'table_name'),
                                               'reason', r ->> 'reason')
                            ORDER BY r ->> 'schema_name', r ->> 'table_name'), '[]')
    INTO v_list FROM jsonb_array_elements(p_relations) r;
  UPDATE steep_repl.init_progress SET not_replicated = v_list, updated_at = now() WHERE node_id = p_node_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'node % has no initialization in progress', quote_literal(p_node_id) USING ERRCODE = 'SR004';
  END IF;
  RETURN v_list;
END $$;
