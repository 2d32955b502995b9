CREATE OR REPLACE FUNCTION steep_repl.foreign_key_ddl(p_table jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(array_agg(format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', p_table ->> 'schema_name', p_table ->> 'table_name',
                                   c ->> 'name', c ->> 'definition') ORDER BY o), '{}')
    FROM jsonb_array_elements(coalesce(p_table -> 'definition' -> 'constraints', '[]')) WITH ORDINALITY x(c, o)
   WHERE c ->> 'type' = 'f'
$$;
