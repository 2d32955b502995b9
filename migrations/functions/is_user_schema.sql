CREATE OR REPLACE FUNCTION steep_repl.is_user_schema(p_schema text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  SELECT p_schema NOT IN ('steep_repl', 'graphile_worker', 'graphile_migrate', 'pg_catalog', 'information_schema', 'pg_toast')
     AND p_schema !~ '^pg_(toast_)?temp_'
$$;
