-- Every relation of a user schema that holds rows a peer might expect: an
-- ordinary, partitioned or foreign table or a materialized view, not
-- temporary, in a user schema (is_user_schema), not an extension's own (an
-- extension's relations come with CREATE EXTENSION, never with a copy or a
-- schema sync). Fingerprints compare them all; user_tables narrows them to
-- tables, replicated_tables to what an init copies.
CREATE OR REPLACE FUNCTION steep_repl.user_relations(p_schemas text[] DEFAULT NULL)
RETURNS TABLE (relid oid, schema_name text, table_name text, relkind "char")
LANGUAGE sql STABLE AS $$
  SELECT c.oid, n.nspname::text, c.relname::text, c.relkind
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'f', 'm')
     AND c.relpersistence <> 't'
     AND steep_repl.is_user_schema(n.nspname)
     AND (p_schemas IS NULL OR n.nspname = ANY (p_schemas))
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                      WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
$$;
