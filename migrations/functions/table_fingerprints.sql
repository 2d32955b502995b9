-- Every user table in one query over pg_catalog (never information_schema,
-- never a query per table). search_path is pinned so that types, defaults
-- and definitions come out schema-qualified and the fingerprint does not
-- depend on the caller's search_path.
CREATE OR REPLACE FUNCTION steep_repl.table_fingerprints(p_schemas text[] DEFAULT NULL, p_require_schemas boolean DEFAULT true)
RETURNS TABLE (schema_name text, table_name text, fingerprint text, column_count integer,
               columns jsonb, table_facts jsonb, definition jsonb)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM steep_repl.check_schema_filter(p_schemas, CASE WHEN p_require_schemas THEN NULL ELSE p_schemas END);
  -- Catalog-wide facts are gathered once each and hash-joined; the columns
  -- of each table come from one index scan of pg_attribute and are written
  -- as JSON text (hashed as written, parsed once per table): a column object
  -- carries only the keys that apply (name, type, not_null always). Defaults
  -- never reference columns, so they deparse without opening the table.
  RETURN QUERY
  WITH tbl AS MATERIALIZED (
    SELECT c.oid, u.schema_name AS nsp, u.table_name AS rel, c.relkind, c.relreplident,
           c.relpersistence, c.relispartition, c.relpartbound
      FROM steep_repl.user_tables(p_schemas) u
      JOIN pg_class c ON c.oid = u.relid
  ), pk AS MATERIALIZED (
    SELECT k.conrelid, k.conname::text AS name, k.conkey,
           CASE WHEN k.conislocal THEN pg_get_constraintdef(k.oid) END AS def
      FROM pg_constraint k JOIN tbl ON tbl.oid = k.conrelid
     WHERE k.contype = 'p'
  ), ri AS MATERIALIZED (
    SELECT i.indrelid, ic.relname::text AS name,
           (SELECT jsonb_agg(a.attname ORDER BY u.ord)
              FROM unnest(i.indkey::int2[]) WITH ORDINALITY u(attnum, ord)
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.attnum) AS cols
      FROM tbl
      JOIN pg_index i ON i.indrelid = tbl.oid AND i.indisreplident
      JOIN pg_class ic ON ic.oid = i.indexrelid
     WHERE tbl.relreplident = 'i'
  ), con AS MATERIALIZED (
    SELECT k.conrelid,
           jsonb_agg(jsonb_build_object('name', k.conname, 'type', k.contype::text, 'definition', pg_get_constraintdef(k.oid))
                     ORDER BY k.contype, k.conname) AS list
      FROM pg_constraint k JOIN tbl ON tbl.oid = k.conrelid
     WHERE k.contype IN ('u', 'c', 'x', 'f') AND k.conislocal
     GROUP BY k.conrelid
  ), idx AS MATERIALIZED (
    SELECT i.indrelid,
           jsonb_agg(jsonb_build_object('name', ic.relname, 'definition', pg_get_indexdef(i.indexrelid)) ORDER BY ic.relname) AS list
      FROM tbl
      JOIN pg_index i ON i.indrelid = tbl.oid
      JOIN pg_class ic ON ic.oid = i.indexrelid
      LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
     WHERE k.oid IS NULL AND NOT ic.relispartition
     GROUP BY i.indrelid
  ), seq AS MATERIALIZED (
    SELECT dep.refobjid AS relid,
           jsonb_agg(jsonb_build_object('column', a.attname, 'schema', sn.nspname, 'name', sc.relname,
                                        'type', format_type(sq.seqtypid, NULL)) ORDER BY a.attnum) AS list
      FROM pg_sequence sq
      JOIN pg_class sc ON sc.oid = sq.seqrelid
      JOIN pg_namespace sn ON sn.oid = sc.relnamespace
      JOIN pg_depend dep ON dep.classid = 'pg_class'::regclass AND dep.objid = sc.oid
                        AND dep.refclassid = 'pg_class'::regclass AND dep.deptype = 'a'
      JOIN tbl ON tbl.oid = dep.refobjid
      JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
     GROUP BY dep.refobjid
  ), described AS (
    SELECT tbl.*, col.n, col.cols_text,
           jsonb_build_object(
             'kind', CASE tbl.relkind WHEN 'p' THEN 'partitioned' ELSE 'table' END,
             'primary_key', col.pk_cols,
             'replica_identity', CASE tbl.relreplident WHEN 'd' THEN 'default' WHEN 'f' THEN 'full'
                                                       WHEN 'n' THEN 'nothing' ELSE 'index' END,
             'replica_identity_columns', ri.cols) AS facts,
           jsonb_build_object(
             'primary_key_name', pk.name,
             'primary_key_definition', pk.def,
             'replica_identity_index', ri.name,
             'constraints', coalesce(con.list, '[]'),
             'indexes', coalesce(idx.list, '[]'),
             'serial_sequences', coalesce(seq.list, '[]'),
             'unlogged', tbl.relpersistence = 'u',
             'partition_key', CASE WHEN tbl.relkind = 'p' THEN pg_get_partkeydef(tbl.oid) END,
             'partition_of', CASE WHEN tbl.relispartition THEN
                               (SELECT format('%I.%I', pn.nspname, pc.relname)
                                  FROM pg_inherits h JOIN pg_class pc ON pc.oid = h.inhparent
                                  JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                                 WHERE h.inhrelid = tbl.oid) END,
             'partition_bound', CASE WHEN tbl.relispartition THEN pg_get_expr(tbl.relpartbound, tbl.oid) END) AS definition
      FROM tbl
      LEFT JOIN pk ON pk.conrelid = tbl.oid
      LEFT JOIN ri ON ri.indrelid = tbl.oid
      LEFT JOIN con ON con.conrelid = tbl.oid
      LEFT JOIN idx ON idx.indrelid = tbl.oid
      LEFT JOIN seq ON seq.relid = tbl.oid
     CROSS JOIN LATERAL (
       SELECT count(*)::integer AS n,
              '[' || coalesce(string_agg(
                '{"name":' || to_json(a.attname::text)::text
                || ',"type":' || to_json(format_type(a.atttypid, a.atttypmod))::text
                || ',"not_null":' || a.attnotnull::text
                || CASE WHEN a.atthasdef AND a.attgenerated = ''
                        THEN ',"default":' || to_json(pg_get_expr(d.adbin, 0))::text ELSE '' END
                || CASE a.attidentity WHEN 'a' THEN ',"identity":"always"' WHEN 'd' THEN ',"identity":"by default"' ELSE '' END
                || CASE WHEN a.attgenerated <> ''
                        THEN ',"generated":' || to_json(pg_get_expr(d.adbin, d.adrelid))::text
                             || CASE a.attgenerated WHEN 's' THEN ',"generated_kind":"stored"' ELSE ',"generated_kind":"virtual"' END
                        ELSE '' END
                || CASE WHEN a.attcollation NOT IN (0, 100)
                        THEN ',"collation":' || to_json((SELECT format('%I.%I', cn.nspname, co.collname)
                                                           FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
                                                          WHERE co.oid = a.attcollation))::text ELSE '' END
                || '}', ',' ORDER BY a.attnum), '') || ']' AS cols_text,
              jsonb_agg(a.attname ORDER BY array_position(pk.conkey, a.attnum)) FILTER (WHERE a.attnum = ANY (pk.conkey)) AS pk_cols
         FROM pg_attribute a
         LEFT JOIN pg_attrdef d ON a.atthasdef AND d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = tbl.oid AND a.attnum > 0 AND NOT a.attisdropped) col
  )
  SELECT x.nsp, x.rel,
         encode(sha256(convert_to(x.cols_text || x.facts::text, 'UTF8')), 'hex'),
         x.n, x.cols_text::jsonb, x.facts, x.definition
    FROM described x
   ORDER BY x.nsp, x.rel;
END $$;
