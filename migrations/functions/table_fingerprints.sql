-- Every user relation in one query over pg_catalog (never information_schema,
-- never a query per table). search_path is pinned so that types, defaults
-- and definitions come out schema-qualified and the fingerprint does not
-- depend on the caller's search_path.
CREATE OR REPLACE FUNCTION steep_repl.table_fingerprints(p_schemas text[] DEFAULT NULL, p_require_schemas boolean DEFAULT true)
RETURNS TABLE (schema_name text, table_name text, fingerprint text, column_count integer,
               columns jsonb, table_facts jsonb, definition jsonb)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  -- column type oid (the type or its array) -> {qualified name: definition}
  -- of every enum, domain, composite and range type it depends on: rows
  -- of a type whose labels, base, constraints or attributes differ do not
  -- replicate, so a column carries them ("types"). Built once, from the
  -- few user types there are, and looked up per column.
  v_types jsonb;
BEGIN
  PERFORM steep_repl.check_schema_filter(p_schemas, CASE WHEN p_require_schemas THEN NULL ELSE p_schemas END);
  WITH RECURSIVE cand AS (
    SELECT t.oid, t.typarray, t.typtype, t.typbasetype, t.typtypmod, t.typnotnull, t.typdefaultbin, t.typrelid,
           format('%I.%I', n.nspname, t.typname) AS name
      FROM pg_type t
      JOIN pg_namespace n ON n.oid = t.typnamespace
      LEFT JOIN pg_class r ON r.oid = t.typrelid
     WHERE t.oid >= 16384 AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND r.relkind = 'c'))
  ), def AS (
    SELECT c.oid, c.name, CASE c.typtype
      WHEN 'e' THEN jsonb_build_object('kind', 'enum', 'labels',
                      (SELECT coalesce(jsonb_agg(e.enumlabel ORDER BY e.enumsortorder), '[]') FROM pg_enum e WHERE e.enumtypid = c.oid))
      WHEN 'd' THEN jsonb_strip_nulls(jsonb_build_object('kind', 'domain', 'base', format_type(c.typbasetype, c.typtypmod),
                      'not_null', c.typnotnull, 'default', pg_get_expr(c.typdefaultbin, 0),
                      'constraints', (SELECT jsonb_agg(pg_get_constraintdef(k.oid) ORDER BY pg_get_constraintdef(k.oid))
                                        FROM pg_constraint k WHERE k.contypid = c.oid AND k.contype = 'c')))
      WHEN 'c' THEN jsonb_build_object('kind', 'composite', 'attributes',
                      (SELECT coalesce(jsonb_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum), '[]')
                         FROM pg_attribute a WHERE a.attrelid = c.typrelid AND a.attnum > 0 AND NOT a.attisdropped))
      ELSE jsonb_build_object('kind', 'range', 'subtype',
                      (SELECT format_type(g.rngsubtype, NULL) FROM pg_range g WHERE g.rngtypid = c.oid))
    END AS def
      FROM cand c
  ), edge AS (
    SELECT c.oid, c.typbasetype AS ref FROM cand c WHERE c.typtype = 'd'
    UNION ALL
    SELECT c.oid, a.atttypid FROM cand c JOIN pg_attribute a ON a.attrelid = c.typrelid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE c.typtype = 'c'
    UNION ALL
    SELECT c.oid, g.rngsubtype FROM cand c JOIN pg_range g ON g.rngtypid = c.oid WHERE c.typtype = 'r'
  ), element_edge AS (
    -- an array of a type depends on that type
    SELECT e.oid, CASE WHEN t.typelem <> 0 AND t.typsubscript = 'array_subscript_handler'::regproc THEN t.typelem ELSE t.oid END AS ref
      FROM edge e JOIN pg_type t ON t.oid = e.ref
  ), closure (root, oid) AS (
    SELECT c.oid, c.oid FROM cand c
    UNION
    SELECT cl.root, e.ref FROM closure cl JOIN element_edge e ON e.oid = cl.oid JOIN cand c ON c.oid = e.ref
  ), per_type AS (
    SELECT cl.root, jsonb_object_agg(d.name, d.def) AS types FROM closure cl JOIN def d ON d.oid = cl.oid GROUP BY cl.root
  )
  SELECT coalesce(jsonb_object_agg(k.key, p.types), '{}') INTO v_types
    FROM per_type p JOIN cand c ON c.oid = p.root
   CROSS JOIN LATERAL (VALUES (c.oid::text), (c.typarray::text)) k(key)
   WHERE k.key <> '0';

  -- Catalog-wide facts are gathered once each and hash-joined; the columns
  -- of each table come from one index scan of pg_attribute and are written
  -- as JSON text (hashed as written, parsed once per table): a column object
  -- carries only the keys that apply (name, type, not_null always). Defaults
  -- never reference columns, so they deparse without opening the table.
  -- A partitioned table is fingerprinted by its own columns and keys, not
  -- by how it is partitioned (kind, partitions): it is replicated through
  -- its root, so the target may partition differently or not at all.
  RETURN QUERY
  WITH tbl AS MATERIALIZED (
    SELECT c.oid, u.schema_name AS nsp, u.table_name AS rel, c.relkind, c.relreplident,
           c.relpersistence, c.relispartition, c.relpartbound,
           CASE WHEN c.relkind IN ('f', 'm', 'p') OR c.relpersistence = 'u'
                THEN steep_repl.not_replicated_reason(c.oid, c.relkind, c.relpersistence) END AS not_replicated
      FROM steep_repl.user_relations(p_schemas) u
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
             'kind', CASE tbl.relkind WHEN 'p' THEN 'partitioned' WHEN 'f' THEN 'foreign table'
                                      WHEN 'm' THEN 'materialized view' ELSE 'table' END,
             'primary_key', col.pk_cols,
             'replica_identity', CASE tbl.relreplident WHEN 'd' THEN 'default' WHEN 'f' THEN 'full'
                                                       WHEN 'n' THEN 'nothing' ELSE 'index' END,
             'replica_identity_columns', ri.cols)
           || CASE WHEN tbl.not_replicated IS NOT NULL THEN jsonb_build_object('not_replicated', tbl.not_replicated) ELSE '{}' END
             AS facts,
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
             'partition_bound', CASE WHEN tbl.relispartition THEN pg_get_expr(tbl.relpartbound, tbl.oid) END,
             'partition_root', CASE WHEN tbl.relispartition THEN
                                 (SELECT format('%I.%I', rn.nspname, rc.relname)
                                    FROM pg_class rc JOIN pg_namespace rn ON rn.oid = rc.relnamespace
                                   WHERE rc.oid = pg_partition_root(tbl.oid)) END,
             'partition_depth', CASE WHEN tbl.relispartition THEN
                                  (SELECT count(*) FROM pg_partition_ancestors(tbl.oid)) - 1 END) AS definition
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
                || CASE WHEN a.atttypid >= 16384 AND v_types ? a.atttypid::text
                        THEN ',"types":' || (v_types -> a.atttypid::text)::text ELSE '' END
                || '}', ',' ORDER BY a.attnum), '') || ']' AS cols_text,
              jsonb_agg(a.attname ORDER BY array_position(pk.conkey, a.attnum)) FILTER (WHERE a.attnum = ANY (pk.conkey)) AS pk_cols
         FROM pg_attribute a
         LEFT JOIN pg_attrdef d ON a.atthasdef AND d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = tbl.oid AND a.attnum > 0 AND NOT a.attisdropped) col
  )
  -- kind counts only for a foreign table or a materialized view: a plain and
  -- a partitioned table both receive rows
  SELECT x.nsp, x.rel,
         encode(sha256(convert_to(x.cols_text || (x.facts - 'kind')::text
                                  || CASE WHEN x.relkind IN ('f', 'm') THEN x.facts ->> 'kind' ELSE '' END, 'UTF8')), 'hex'),
         x.n, x.cols_text::jsonb, x.facts, x.definition
    FROM described x
   ORDER BY x.nsp, x.rel;
END $$;
