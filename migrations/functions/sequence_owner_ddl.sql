CREATE OR REPLACE FUNCTION steep_repl.sequence_owner_ddl(p_table jsonb, p_column text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(array_agg(format('ALTER SEQUENCE %I.%I OWNED BY %I.%I.%I', s ->> 'schema', s ->> 'name',
                                   p_table ->> 'schema_name', p_table ->> 'table_name', s ->> 'column')), '{}')
    FROM jsonb_array_elements(coalesce(p_table -> 'definition' -> 'serial_sequences', '[]')) s
   WHERE p_column IS NULL OR s ->> 'column' = p_column
$$;
