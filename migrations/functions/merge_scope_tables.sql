-- The tables a merge compares, on node A: {} all that logical replication
-- can carry here (replicated_tables), {"tables": [names]} or {"schema": "s"}
-- among them, read as pick_tables reads them. Unknown and ambiguous names,
-- and a scope with no table, are refused (SR004). p_known (a JSON array of
-- {schema_name, table_name, label}) replaces replicated_tables().
CREATE OR REPLACE FUNCTION steep_repl.merge_scope_tables(p_scope jsonb DEFAULT '{}', p_context text DEFAULT NULL, p_known jsonb DEFAULT NULL)
RETURNS TABLE (schema_name text, table_name text, label text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_context text := coalesce(p_context, 'this node can replicate');
  v_known jsonb := p_known;
  v_found integer := 0;
BEGIN
  IF EXISTS (SELECT 1 FROM jsonb_object_keys(CASE WHEN jsonb_typeof(p_scope) = 'object' THEN p_scope ELSE '{}' END) k WHERE k = 'full') THEN
    RAISE EXCEPTION 'unknown table scope ''full''' USING ERRCODE = 'SR004',
      HINT = 'a scope names tables ({"tables": ["s.t", ...]}) or a schema ({"schema": "s"})';
  END IF;
  IF v_known IS NULL THEN
    SELECT coalesce(jsonb_agg(jsonb_build_object('schema_name', t.schema_name, 'table_name', t.table_name, 'label', t.label)), '[]')
      INTO v_known FROM steep_repl.replicated_tables() t;
  END IF;
  FOR schema_name, table_name, label IN SELECT * FROM steep_repl.pick_tables(v_known, p_scope, v_context) LOOP
    v_found := v_found + 1;
    RETURN NEXT;
  END LOOP;
  IF v_found = 0 THEN
    RAISE EXCEPTION 'there is no table to merge: none of the tables %', v_context
      USING ERRCODE = 'SR004', HINT = 'a merge compares the user tables logical replication can carry (not unlogged ones)';
  END IF;
END $$;
