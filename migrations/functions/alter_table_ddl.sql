-- Column by column ALTERs for a table whose columns can stay in place.
CREATE OR REPLACE FUNCTION steep_repl.alter_table_ddl(p_source jsonb, p_target jsonb) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_schema text := p_source ->> 'schema_name';
  v_qual text := format('%I.%I', p_source ->> 'schema_name', p_source ->> 'table_name');
  v_sf jsonb := p_source -> 'table_facts';
  v_tf jsonb := p_target -> 'table_facts';
  v_sd jsonb := coalesce(p_source -> 'definition', '{}');
  v_td jsonb := coalesce(p_target -> 'definition', '{}');
  v_pk_changed boolean := coalesce(v_sf -> 'primary_key', 'null') <> coalesce(v_tf -> 'primary_key', 'null');
  v_ddl text[] := '{}';
  v_col text;
  v_ri_index text;
  v_def_dropped boolean;
  r record;
BEGIN
  IF v_pk_changed AND v_td ->> 'primary_key_name' IS NOT NULL THEN
    v_ddl := v_ddl || format('ALTER TABLE %s DROP CONSTRAINT %I', v_qual, v_td ->> 'primary_key_name');
  END IF;
  FOR r IN SELECT t FROM jsonb_array_elements(p_target -> 'columns') WITH ORDINALITY x(t, o)
            WHERE NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_source -> 'columns') s WHERE s ->> 'name' = t ->> 'name')
            ORDER BY o LOOP
    v_ddl := v_ddl || format('ALTER TABLE %s DROP COLUMN %I', v_qual, r.t ->> 'name');
  END LOOP;
  FOR r IN SELECT s FROM jsonb_array_elements(p_source -> 'columns') WITH ORDINALITY x(s, o)
            WHERE NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_target -> 'columns') t WHERE t ->> 'name' = s ->> 'name')
            ORDER BY o LOOP
    v_ddl := v_ddl || steep_repl.serial_sequence_ddl(p_source, r.s ->> 'name')
                   || format('ALTER TABLE %s ADD COLUMN %s', v_qual, steep_repl.column_definition(r.s))
                   || steep_repl.sequence_owner_ddl(p_source, r.s ->> 'name');
  END LOOP;
  FOR r IN SELECT s, t FROM jsonb_array_elements(p_source -> 'columns') WITH ORDINALITY x(s, o)
             JOIN jsonb_array_elements(p_target -> 'columns') y(t) ON t ->> 'name' = s ->> 'name'
            WHERE s <> t ORDER BY o LOOP
    v_col := format('ALTER TABLE %s ALTER COLUMN %I', v_qual, r.s ->> 'name');
    v_def_dropped := false;
    IF r.t ->> 'identity' IS NOT NULL AND r.s ->> 'identity' IS NULL THEN
      v_ddl := v_ddl || (v_col || ' DROP IDENTITY');
    ELSIF r.t ->> 'identity' IS NOT NULL AND r.s ->> 'identity' <> r.t ->> 'identity' THEN
      v_ddl := v_ddl || (v_col || format(' SET GENERATED %s', upper(r.s ->> 'identity')));
    END IF;
    IF r.t ->> 'default' IS NOT NULL AND (r.s -> 'default' IS DISTINCT FROM r.t -> 'default' OR r.s ->> 'type' <> r.t ->> 'type') THEN
      v_ddl := v_ddl || (v_col || ' DROP DEFAULT');
      v_def_dropped := true;
    END IF;
    IF r.s ->> 'type' <> r.t ->> 'type' OR coalesce(r.s -> 'collation', 'null') <> coalesce(r.t -> 'collation', 'null') THEN
      v_ddl := v_ddl || (v_col || format(' TYPE %s', r.s ->> 'type') || coalesce(' COLLATE ' || (r.s ->> 'collation'), '')
                         || CASE WHEN steep_repl.type_without_modifiers(r.s ->> 'type') = steep_repl.type_without_modifiers(r.t ->> 'type')
                                   OR r.s ->> 'generated' IS NOT NULL THEN ''
                                 ELSE ' USING ' || steep_repl.cast_expression(r.s, r.t) END);
    END IF;
    IF r.s ->> 'default' IS NOT NULL AND (v_def_dropped OR r.t ->> 'default' IS NULL) THEN
      v_ddl := v_ddl || steep_repl.serial_sequence_ddl(p_source, r.s ->> 'name')
                     || (v_col || ' SET DEFAULT ' || (r.s ->> 'default'))
                     || steep_repl.sequence_owner_ddl(p_source, r.s ->> 'name');
    END IF;
    IF r.s -> 'not_null' <> r.t -> 'not_null' THEN
      v_ddl := v_ddl || (v_col || CASE WHEN (r.s ->> 'not_null')::boolean THEN ' SET NOT NULL' ELSE ' DROP NOT NULL' END);
    END IF;
    IF r.s ->> 'identity' IS NOT NULL AND r.t ->> 'identity' IS NULL THEN
      v_ddl := v_ddl || (v_col || format(' ADD GENERATED %s AS IDENTITY', upper(r.s ->> 'identity')))
                     || format('SELECT setval(pg_get_serial_sequence(%L, %L), max(%I)) FROM %s', v_qual, r.s ->> 'name', r.s ->> 'name', v_qual);
    END IF;
    IF r.s ->> 'generated' IS NOT NULL AND r.s -> 'generated' IS DISTINCT FROM r.t -> 'generated' THEN
      v_ddl := v_ddl || (v_col || format(' SET EXPRESSION AS (%s)', r.s ->> 'generated'));
    END IF;
  END LOOP;
  IF v_pk_changed AND v_sd ->> 'primary_key_definition' IS NOT NULL THEN
    v_ddl := v_ddl || format('ALTER TABLE %s ADD CONSTRAINT %I %s', v_qual, v_sd ->> 'primary_key_name', v_sd ->> 'primary_key_definition');
  END IF;
  IF coalesce(v_sf -> 'replica_identity', 'null') <> coalesce(v_tf -> 'replica_identity', 'null')
     OR coalesce(v_sf -> 'replica_identity_columns', 'null') <> coalesce(v_tf -> 'replica_identity_columns', 'null') THEN
    v_ri_index := v_sd ->> 'replica_identity_index';
    IF v_sf ->> 'replica_identity' = 'index' AND v_ri_index IS DISTINCT FROM v_sd ->> 'primary_key_name'
       AND to_regclass(format('%I.%I', v_schema, v_ri_index)) IS NULL THEN
      v_ddl := v_ddl || coalesce((SELECT array_agg(i ->> 'definition') FROM jsonb_array_elements(coalesce(v_sd -> 'indexes', '[]')) i
                                   WHERE i ->> 'name' = v_ri_index), '{}')
                     || coalesce((SELECT array_agg(format('ALTER TABLE %s ADD CONSTRAINT %I %s', v_qual, c ->> 'name', c ->> 'definition'))
                                    FROM jsonb_array_elements(coalesce(v_sd -> 'constraints', '[]')) c
                                   WHERE c ->> 'name' = v_ri_index), '{}');
    END IF;
    v_ddl := v_ddl || steep_repl.replica_identity_ddl(p_source);
  END IF;
  -- an unlogged copy of a logged table would lose what it received at a crash
  IF v_sf ->> 'not_replicated' IS NULL AND v_tf ->> 'not_replicated' = 'unlogged table' THEN
    v_ddl := v_ddl || format('ALTER TABLE %s SET LOGGED', v_qual);
  END IF;
  RETURN v_ddl;
END $$;
