-- The set a client carries to the peer: one JSON array.
CREATE OR REPLACE FUNCTION steep_repl.fingerprint_set(p_schemas text[] DEFAULT NULL, p_require_schemas boolean DEFAULT true)
RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_agg(to_jsonb(f) ORDER BY f.schema_name, f.table_name), '[]')
    FROM steep_repl.table_fingerprints(p_schemas, p_require_schemas) f
$$;
