-- A reinit's tables (init_progress.reinit.tables) as names quoted the way
-- PostgreSQL quotes them; [] for a full reinit (every table).
CREATE OR REPLACE FUNCTION steep_repl.reinit_labels(p_reinit jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(jsonb_agg(format('%I.%I', t ->> 'schema_name', t ->> 'table_name') ORDER BY t ->> 'schema_name', t ->> 'table_name'), '[]')
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_reinit -> 'tables') = 'array' THEN p_reinit -> 'tables' ELSE '[]' END) t
$$;
