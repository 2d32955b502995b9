-- Creates a table as the source has it: columns, primary key, unique,
-- check and exclusion constraints, indexes, replica identity, owned
-- sequences. Foreign keys come from foreign_key_ddl, after every table exists.
CREATE OR REPLACE FUNCTION steep_repl.create_table_ddl(p_table jsonb) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  v_qual text := format('%I.%I', p_table ->> 'schema_name', p_table ->> 'table_name');
  v_def jsonb := coalesce(p_table -> 'definition', '{}');
  v_ddl text[] := steep_repl.serial_sequence_ddl(p_table, NULL);
  v_cols text;
BEGIN
  IF v_def ->> 'partition_of' IS NOT NULL THEN
    v_ddl := v_ddl || format('CREATE TABLE %s PARTITION OF %s %s', v_qual, v_def ->> 'partition_of', v_def ->> 'partition_bound');
  ELSE
    SELECT string_agg(steep_repl.column_definition(c), ', ' ORDER BY o) INTO v_cols
      FROM jsonb_array_elements(p_table -> 'columns') WITH ORDINALITY x(c, o);
    v_ddl := v_ddl || format('CREATE %sTABLE %s (%s)%s',
                             CASE WHEN (v_def ->> 'unlogged')::boolean THEN 'UNLOGGED ' ELSE '' END,
                             v_qual, coalesce(v_cols, ''),
                             coalesce(' PARTITION BY ' || (v_def ->> 'partition_key'), ''));
  END IF;
  IF v_def ->> 'primary_key_definition' IS NOT NULL THEN
    v_ddl := v_ddl || format('ALTER TABLE %s ADD CONSTRAINT %I %s', v_qual, v_def ->> 'primary_key_name', v_def ->> 'primary_key_definition');
  END IF;
  v_ddl := v_ddl || coalesce((SELECT array_agg(format('ALTER TABLE %s ADD CONSTRAINT %I %s', v_qual, c ->> 'name', c ->> 'definition') ORDER BY o)
                                FROM jsonb_array_elements(coalesce(v_def -> 'constraints', '[]')) WITH ORDINALITY x(c, o)
                               WHERE c ->> 'type' <> 'f'), '{}')
                   || coalesce((SELECT array_agg(i ->> 'definition' ORDER BY o)
                                FROM jsonb_array_elements(coalesce(v_def -> 'indexes', '[]')) WITH ORDINALITY x(i, o)), '{}')
                   || steep_repl.sequence_owner_ddl(p_table, NULL);
  IF coalesce(p_table -> 'table_facts' ->> 'replica_identity', 'default') <> 'default' THEN
    v_ddl := v_ddl || steep_repl.replica_identity_ddl(p_table);
  END IF;
  RETURN v_ddl;
END $$;
