-- Records facts a method needs to resume, fail or cancel exactly (its
-- subscription's oid, whether it copies, the catch-up target, ...): p_facts
-- holds columns of init_method_state; a key that is none is refused.
CREATE OR REPLACE FUNCTION steep_repl.record_method_state(p_node_id text, p_facts jsonb)
RETURNS steep_repl.init_method_state LANGUAGE plpgsql AS $$
DECLARE
  v_columns text;
  v_unknown text;
  v_state steep_repl.init_method_state;
BEGIN
  SELECT string_agg(quote_ident(k), ', ') FILTER (WHERE a.attname IS NOT NULL AND k NOT IN ('node_id', 'updated_at')),
         string_agg(quote_literal(k), ', ') FILTER (WHERE a.attname IS NULL OR k IN ('node_id', 'updated_at'))
    INTO v_columns, v_unknown
    FROM jsonb_object_keys(coalesce(p_facts, '{}')) k
    LEFT JOIN pg_catalog.pg_attribute a
           ON a.attrelid = 'steep_repl.init_method_state'::regclass AND a.attname = k AND a.attnum > 0 AND NOT a.attisdropped;
  IF v_unknown IS NOT NULL THEN
    RAISE EXCEPTION 'init_method_state has no column %', v_unknown USING ERRCODE = 'SR004';
  END IF;
  IF v_columns IS NULL THEN
    SELECT * INTO v_state FROM steep_repl.init_method_state WHERE node_id = p_node_id;
  ELSE
    EXECUTE format('UPDATE steep_repl.init_method_state t SET (%1$s, updated_at) = (SELECT %1$s, now() FROM jsonb_populate_record(t, $2))
                    WHERE node_id = $1 RETURNING *', v_columns)
      INTO v_state USING p_node_id, p_facts;
  END IF;
  IF v_state.node_id IS NULL THEN
    RAISE EXCEPTION 'node % has no initialization in progress', quote_ident(p_node_id) USING ERRCODE = 'SR003';
  END IF;
  RETURN v_state;
END $$;
