-- Stores this database's fingerprints under a node id (default: the local
-- node), replacing that node's earlier capture of the same schemas.
CREATE OR REPLACE FUNCTION steep_repl.capture_fingerprints(p_node_id text DEFAULT NULL, p_schemas text[] DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_node text := coalesce(p_node_id, steep_repl.local_node_id());
  v_count integer;
BEGIN
  IF v_node IS NULL THEN
    RAISE EXCEPTION 'no node id given and this database has no local node'
      USING ERRCODE = 'SR004', HINT = 'register it with steep-repl node register <id> ... --local, or pass the node id';
  END IF;
  PERFORM steep_repl.check_schema_filter(p_schemas);
  DELETE FROM steep_repl.schema_fingerprints
   WHERE node_id = v_node AND (p_schemas IS NULL OR schema_name = ANY (p_schemas));
  INSERT INTO steep_repl.schema_fingerprints
         (node_id, schema_name, table_name, fingerprint, column_count, columns, table_facts, definition, captured_at)
  SELECT v_node, f.schema_name, f.table_name, f.fingerprint, f.column_count, f.columns, f.table_facts, f.definition, now()
    FROM steep_repl.table_fingerprints(p_schemas) f;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END $$;
