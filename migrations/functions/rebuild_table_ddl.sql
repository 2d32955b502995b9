-- Rebuild keeping the rows: stash them, recreate the table as the source
-- has it, copy the shared columns back (cast where the type changed), move
-- sequences past the copied keys.
CREATE OR REPLACE FUNCTION steep_repl.rebuild_table_ddl(p_source jsonb, p_target jsonb, p_stash text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  v_qual text := format('%I.%I', p_source ->> 'schema_name', p_source ->> 'table_name');
  v_ddl text[];
  v_cols text;
  v_exprs text;
BEGIN
  v_ddl := ARRAY[format('CREATE TEMP TABLE %I ON COMMIT DROP AS SELECT * FROM %s', p_stash, v_qual),
                 format('DROP TABLE %s', v_qual)]
           || steep_repl.create_table_ddl(p_source);
  SELECT string_agg(format('%I', s ->> 'name'), ', ' ORDER BY so),
         string_agg(steep_repl.cast_expression(s, t), ', ' ORDER BY so)
    INTO v_cols, v_exprs
    FROM jsonb_array_elements(p_source -> 'columns') WITH ORDINALITY a(s, so)
    JOIN jsonb_array_elements(p_target -> 'columns') b(t) ON t ->> 'name' = s ->> 'name'
   WHERE s ->> 'generated' IS NULL;
  IF v_cols IS NOT NULL THEN
    v_ddl := v_ddl || format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM pg_temp.%I', v_qual, v_cols, v_exprs, p_stash);
  END IF;
  v_ddl := v_ddl || coalesce((
    SELECT array_agg(format('SELECT setval(pg_get_serial_sequence(%L, %L), max(%I)) FROM %s', v_qual, s ->> 'name', s ->> 'name', v_qual) ORDER BY so)
      FROM jsonb_array_elements(p_source -> 'columns') WITH ORDINALITY a(s, so)
     WHERE s ->> 'identity' IS NOT NULL
        OR EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(p_source -> 'definition' -> 'serial_sequences', '[]')) q
                    WHERE q ->> 'column' = s ->> 'name')), '{}');
  RETURN v_ddl || format('DROP TABLE pg_temp.%I', p_stash);
END $$;
