-- A peer's set, checked for shape before anything trusts it.
CREATE OR REPLACE FUNCTION steep_repl.fingerprint_rows(p_set jsonb)
RETURNS TABLE (schema_name text, table_name text, fingerprint text, column_count integer,
               columns jsonb, table_facts jsonb, definition jsonb)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  v_bad jsonb;
  v_name text;
BEGIN
  IF p_set IS NULL OR jsonb_typeof(p_set) <> 'array' THEN
    RAISE EXCEPTION 'a fingerprint set must be a JSON array of table fingerprints'
      USING ERRCODE = 'SR004';
  END IF;
  SELECT e INTO v_bad FROM jsonb_array_elements(p_set) e
   WHERE jsonb_typeof(e) IS DISTINCT FROM 'object'
      OR jsonb_typeof(e -> 'schema_name') IS DISTINCT FROM 'string'
      OR jsonb_typeof(e -> 'table_name') IS DISTINCT FROM 'string'
      OR (e ->> 'fingerprint') !~ '^[0-9a-f]{64}$' OR e ->> 'fingerprint' IS NULL
      OR jsonb_typeof(e -> 'columns') IS DISTINCT FROM 'array'
      OR jsonb_typeof(e -> 'table_facts') IS DISTINCT FROM 'object'
      OR EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e -> 'columns') = 'array' THEN e -> 'columns' END) c
                  WHERE jsonb_typeof(c -> 'name') IS DISTINCT FROM 'string' OR jsonb_typeof(c -> 'type') IS DISTINCT FROM 'string')
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'malformed table fingerprint: %', left(v_bad::text, 200)
      USING ERRCODE = 'SR004',
            HINT = 'each entry needs schema_name, table_name, a 64-hex fingerprint, columns (with name and type) and table_facts';
  END IF;
  SELECT format('%I.%I', e ->> 'schema_name', e ->> 'table_name') INTO v_name FROM jsonb_array_elements(p_set) e
   GROUP BY e ->> 'schema_name', e ->> 'table_name' HAVING count(*) > 1 LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'the fingerprint set names table % twice', v_name USING ERRCODE = 'SR004';
  END IF;
  RETURN QUERY
  SELECT e ->> 'schema_name', e ->> 'table_name', e ->> 'fingerprint',
         jsonb_array_length(e -> 'columns'), e -> 'columns', e -> 'table_facts', coalesce(e -> 'definition', '{}')
    FROM jsonb_array_elements(p_set) e;
END $$;
