CREATE OR REPLACE FUNCTION steep_repl.replica_identity_ddl(p_table jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT format('ALTER TABLE %I.%I REPLICA IDENTITY ', p_table ->> 'schema_name', p_table ->> 'table_name')
      || CASE p_table -> 'table_facts' ->> 'replica_identity'
           WHEN 'full' THEN 'FULL'
           WHEN 'nothing' THEN 'NOTHING'
           WHEN 'index' THEN format('USING INDEX %I', p_table -> 'definition' ->> 'replica_identity_index')
           ELSE 'DEFAULT' END
$$;
