-- Run on the target with the source's set (fingerprint_set() there).
-- Partitions are not compared: a partitioned table is replicated through its
-- root (publish_via_partition_root), so its row compares the root's columns
-- and keys and each node partitions as it likes. A relation logical
-- replication cannot carry (table_facts.not_replicated on the source:
-- unlogged, foreign, materialized view, an unlogged or foreign partition) is
-- NOT_REPLICATED whatever the target has: strict refuses it, auto and manual
-- initialize without it.
CREATE OR REPLACE FUNCTION steep_repl.compare_fingerprints(p_source jsonb, p_schemas text[] DEFAULT NULL)
RETURNS TABLE (schema_name text, table_name text, status text, blocking boolean,
               source_fingerprint text, target_fingerprint text, differences jsonb)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
  PERFORM steep_repl.check_schema_filter(p_schemas,
    ARRAY(SELECT DISTINCT r.schema_name FROM steep_repl.fingerprint_rows(p_source) r));
  RETURN QUERY
  WITH src AS (
    SELECT r.* FROM steep_repl.fingerprint_rows(p_source) r
     WHERE steep_repl.is_user_schema(r.schema_name) AND (p_schemas IS NULL OR r.schema_name = ANY (p_schemas))
       AND r.definition ->> 'partition_of' IS NULL
  ), tgt AS (
    SELECT l.* FROM steep_repl.table_fingerprints(p_schemas, false) l WHERE l.definition ->> 'partition_of' IS NULL
  ), pairs AS (
    SELECT coalesce(s.schema_name, t.schema_name) AS schema_name, coalesce(s.table_name, t.table_name) AS table_name,
           CASE WHEN s.table_facts ->> 'not_replicated' IS NOT NULL THEN 'NOT_REPLICATED'
                WHEN t.table_name IS NULL THEN 'REMOTE_ONLY'
                WHEN s.table_name IS NULL THEN 'LOCAL_ONLY'
                WHEN s.fingerprint = t.fingerprint THEN 'MATCH'
                ELSE 'MISMATCH' END AS status,
           s.fingerprint AS sf, t.fingerprint AS tf, to_jsonb(s) AS s, to_jsonb(t) AS t
      FROM src s FULL JOIN tgt t ON t.schema_name = s.schema_name AND t.table_name = s.table_name
  )
  SELECT p.schema_name, p.table_name, p.status, p.status IN ('MISMATCH', 'REMOTE_ONLY', 'NOT_REPLICATED'), p.sf, p.tf,
         CASE p.status
           WHEN 'MATCH' THEN '[]'::jsonb
           WHEN 'NOT_REPLICATED' THEN jsonb_build_array(steep_repl.not_replicated_difference(
             p.schema_name, p.table_name, p.s -> 'table_facts' ->> 'not_replicated', p.t IS NOT NULL))
           WHEN 'REMOTE_ONLY' THEN jsonb_build_array(jsonb_build_object('kind', 'table_missing',
             'detail', format('table %I.%I exists on the source only', p.schema_name, p.table_name)))
           WHEN 'LOCAL_ONLY' THEN jsonb_build_array(jsonb_build_object('kind', 'table_extra',
             'detail', format('table %I.%I exists on the target only (never blocks, never dropped)', p.schema_name, p.table_name)))
           ELSE coalesce(nullif(steep_repl.table_differences(p.s, p.t), '[]'),
                         jsonb_build_array(jsonb_build_object('kind', 'fingerprint',
                           'detail', 'fingerprints differ although every compared fact is equal (different server versions deparse differently?)')))
         END
    FROM pairs p
   ORDER BY p.schema_name, p.table_name;
END $$;
