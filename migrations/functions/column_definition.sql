CREATE OR REPLACE FUNCTION steep_repl.column_definition(p_column jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT format('%I %s', p_column ->> 'name', p_column ->> 'type')
      || coalesce(' COLLATE ' || (p_column ->> 'collation'), '')
      || CASE WHEN p_column ->> 'generated' IS NOT NULL
                THEN format(' GENERATED ALWAYS AS (%s) %s', p_column ->> 'generated', upper(coalesce(p_column ->> 'generated_kind', 'stored')))
              WHEN p_column ->> 'identity' IS NOT NULL
                THEN format(' GENERATED %s AS IDENTITY', upper(p_column ->> 'identity'))
              WHEN p_column ->> 'default' IS NOT NULL
                THEN ' DEFAULT ' || (p_column ->> 'default')
              ELSE '' END
      || CASE WHEN (p_column ->> 'not_null')::boolean AND p_column ->> 'identity' IS NULL THEN ' NOT NULL' ELSE '' END
$$;
