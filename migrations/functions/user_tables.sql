-- The one definition of "user table": an ordinary or partitioned table of
-- user_relations (not temporary, in a user schema, not an extension's own).
-- replicated_tables narrows them to what an init copies.
CREATE OR REPLACE FUNCTION steep_repl.user_tables(p_schemas text[] DEFAULT NULL)
RETURNS TABLE (relid oid, schema_name text, table_name text)
LANGUAGE sql STABLE AS $$
  SELECT r.relid, r.schema_name, r.table_name FROM steep_repl.user_relations(p_schemas) r WHERE r.relkind IN ('r', 'p')
$$;
