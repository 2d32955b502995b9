-- Publication, subscription and slot of one source → target pair share a
-- name that is a valid slot name ([a-z0-9_], at most 63 bytes) for any pair
-- of node ids: a readable prefix plus a hash that keeps distinct pairs apart.
CREATE OR REPLACE FUNCTION steep_repl.replication_name(p_source text, p_target text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT 'steep_' || left(trim(both '_' from regexp_replace(lower(p_source), '[^a-z0-9]+', '_', 'g')), 16)
      || '_to_' || left(trim(both '_' from regexp_replace(lower(p_target), '[^a-z0-9]+', '_', 'g')), 16)
      || '_' || left(md5(jsonb_build_array(p_source, p_target)::text), 10)
$$;
