-- schema.sql of a snapshot, statement by statement: run on the source in
-- the snapshot's transaction, from the fingerprint definitions (as the
-- schema step's plan creates a missing table): the schemas, the user types
-- the columns use (enums, ranges, domains, composites, as their
-- fingerprints describe them), then each
-- table (p_tables: [{schema_name, table_name}]) with its keys,
-- constraints, indexes, replica identity and owned sequences followed by
-- its partitions (parents first), then every foreign key once all tables exist.
CREATE OR REPLACE FUNCTION steep_repl.snapshot_schema_ddl(p_tables jsonb)
RETURNS TABLE (step integer, ddl text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  v_fp jsonb;
BEGIN
  SELECT jsonb_object_agg(format('%I.%I', f.schema_name, f.table_name), to_jsonb(f)) INTO v_fp
    FROM steep_repl.table_fingerprints() f;
  v_fp := coalesce(v_fp, '{}');
  RETURN QUERY
  WITH wanted AS (
    SELECT t.schema_name, t.table_name, format('%I.%I', t.schema_name, t.table_name) AS label
      FROM jsonb_to_recordset(coalesce(p_tables, '[]')) AS t(schema_name text, table_name text)
  ), members AS (
    -- each table, then its partitions by depth
    SELECT w.label AS root, w.label, 0 AS depth, v_fp -> w.label AS fp FROM wanted w WHERE v_fp ? w.label
    UNION ALL
    SELECT w.label, e.key, coalesce((e.value -> 'definition' ->> 'partition_depth')::integer, 1), e.value
      FROM wanted w JOIN jsonb_each(v_fp) e
        ON coalesce(e.value -> 'definition' ->> 'partition_root', e.value -> 'definition' ->> 'partition_of') = w.label
  ), types AS (
    SELECT DISTINCT ON (t.key) t.key AS name, t.value AS def,
           (SELECT n.nspname::text FROM pg_catalog.pg_type y JOIN pg_catalog.pg_namespace n ON n.oid = y.typnamespace
             WHERE y.oid = to_regtype(t.key)) AS schema_name
      FROM members m
     CROSS JOIN LATERAL jsonb_array_elements(coalesce(m.fp -> 'columns', '[]')) c
     CROSS JOIN LATERAL jsonb_each(coalesce(c -> 'types', '{}')) t
  ), statements AS (
    SELECT 1 AS section, s.schema_name AS k1, ''::text AS k2, 0 AS k3, 0::bigint AS n, format('CREATE SCHEMA IF NOT EXISTS %I', s.schema_name) AS ddl
      FROM (SELECT m.fp ->> 'schema_name' AS schema_name FROM members m
            UNION SELECT t.schema_name FROM types t WHERE t.schema_name IS NOT NULL) s
    UNION ALL
    SELECT 2, '', t.name, array_position(ARRAY['enum', 'range', 'domain', 'composite'], t.def ->> 'kind'), 0,
           CASE t.def ->> 'kind'
             WHEN 'enum' THEN format('CREATE TYPE %s AS ENUM (%s)', t.name,
                                     (SELECT string_agg(quote_literal(l), ', ' ORDER BY o) FROM jsonb_array_elements_text(t.def -> 'labels') WITH ORDINALITY x(l, o)))
             WHEN 'range' THEN format('CREATE TYPE %s AS RANGE (subtype = %s)', t.name, t.def ->> 'subtype')
             WHEN 'domain' THEN format('CREATE DOMAIN %s AS %s', t.name, t.def ->> 'base')
                                || coalesce(' DEFAULT ' || (t.def ->> 'default'), '')
                                || CASE WHEN (t.def ->> 'not_null')::boolean THEN ' NOT NULL' ELSE '' END
                                || coalesce((SELECT string_agg(' ' || k, '' ORDER BY k) FROM jsonb_array_elements_text(t.def -> 'constraints') k), '')
             ELSE format('CREATE TYPE %s AS (%s)', t.name,
                         (SELECT string_agg(a, ', ' ORDER BY o) FROM jsonb_array_elements_text(t.def -> 'attributes') WITH ORDINALITY x(a, o)))
           END
      FROM types t
    UNION ALL
    SELECT 3, m.root, m.label, m.depth, x.n, x.ddl
      FROM members m CROSS JOIN LATERAL unnest(steep_repl.create_table_ddl(m.fp)) WITH ORDINALITY x(ddl, n)
    UNION ALL
    SELECT 4, m.root, m.label, 0, x.n, x.ddl
      FROM members m CROSS JOIN LATERAL unnest(steep_repl.foreign_key_ddl(m.fp)) WITH ORDINALITY x(ddl, n)
     WHERE m.depth = 0
  )
  SELECT (row_number() OVER (ORDER BY s.section, s.k3, s.k1 COLLATE "C", s.k2 COLLATE "C", s.n))::integer, s.ddl
    FROM statements s
   ORDER BY 1;
END $$;
