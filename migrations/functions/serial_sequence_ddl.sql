-- A sequence a serial column's default needs (created before the column).
CREATE OR REPLACE FUNCTION steep_repl.serial_sequence_ddl(p_table jsonb, p_column text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(array_agg(format('CREATE SEQUENCE IF NOT EXISTS %I.%I AS %s', s ->> 'schema', s ->> 'name', s ->> 'type')), '{}')
    FROM jsonb_array_elements(coalesce(p_table -> 'definition' -> 'serial_sequences', '[]')) s
   WHERE p_column IS NULL OR s ->> 'column' = p_column
$$;
