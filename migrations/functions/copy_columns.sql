-- The columns a COPY of the relation carries (not dropped, not generated),
-- in order, with their types: a direct copy reads and writes them by name,
-- and in binary only where both sides have the same built-in types (a
-- user-defined type's binary form can carry its oid, which differs between
-- servers).
CREATE OR REPLACE FUNCTION steep_repl.copy_columns(p_schema text, p_table text)
RETURNS TABLE (column_name text, type_name text, builtin boolean)
LANGUAGE sql STABLE AS $$
  SELECT a.attname::text, pg_catalog.format_type(a.atttypid, NULL), a.atttypid < 16384
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = p_schema AND c.relname = p_table AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
  ORDER BY a.attnum
$$;
