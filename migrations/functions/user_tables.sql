-- The one definition of "user table": an ordinary or partitioned table, not
-- temporary, in a user schema (is_user_schema), not an extension's own (an
-- extension's tables come with CREATE EXTENSION, never with a copy or a
-- schema sync). Fingerprints compare them all; replicated_tables narrows
-- them to what an init copies.
CREATE OR REPLACE FUNCTION steep_repl.user_tables(p_schemas text[] DEFAULT NULL)
RETURNS TABLE (relid oid, schema_name text, table_name text)
LANGUAGE sql STABLE AS $$
  SELECT c.oid, n.nspname::text, c.relname::text
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p')
     AND c.relpersistence <> 't'
     AND steep_repl.is_user_schema(n.nspname)
     AND (p_schemas IS NULL OR n.nspname = ANY (p_schemas))
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                      WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
$$;
