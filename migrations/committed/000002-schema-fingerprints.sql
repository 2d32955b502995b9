--! Previous: sha1:77ff410771869f8d6f9966e408df1ba0370ecb62
--! Hash: sha1:ec718f9f70f1960eb66f5b352ebb76c5183dfc98
--! Message: schema fingerprints

-- Schema fingerprints, drift detection and the DDL plan of schema sync
-- (SPEC §4.1). Everything that decides (is this table compatible? which DDL
-- makes it so?) is here; clients only carry one node's fingerprint set to
-- the other. Conventions of the comparison: it runs on the TARGET (the node
-- that will receive data, "local") against the SOURCE's set ("remote"):
-- REMOTE_ONLY = the table exists on the source only, LOCAL_ONLY = on the
-- target only. Source-only and mismatched tables block an init; target-only
-- tables are reported but never block and are never dropped.

-- The definitions that let schema sync create a missing table: constraints,
-- indexes, owned sequences, partitioning. Not part of the fingerprint.
ALTER TABLE steep_repl.schema_fingerprints
  ADD COLUMN definition jsonb NOT NULL DEFAULT '{}';
-- A capture rewrites every row of the node: stored uncompressed, since pglz
-- on a thousand JSON values costs as much as computing the fingerprints.
ALTER TABLE steep_repl.schema_fingerprints
  ALTER COLUMN columns SET STORAGE EXTERNAL,
  ALTER COLUMN definition SET STORAGE EXTERNAL;

COMMENT ON COLUMN steep_repl.schema_fingerprints.columns IS
  'ordered column definitions: name, type (format_type with typmod), not_null, and where they apply default, identity, generated, generated_kind, collation';
COMMENT ON COLUMN steep_repl.schema_fingerprints.table_facts IS
  'what replication depends on: kind, primary_key (column names), replica_identity, replica_identity_columns';

CREATE FUNCTION steep_repl.is_user_schema(p_schema text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  SELECT p_schema NOT IN ('steep_repl', 'graphile_worker', 'graphile_migrate', 'pg_catalog', 'information_schema', 'pg_toast')
     AND p_schema !~ '^pg_(toast_)?temp_'
$$;

-- A schema filter must name user schemas that exist here (or, when the
-- comparison also knows the peer's set, on one of the two nodes).
CREATE FUNCTION steep_repl.check_schema_filter(p_schemas text[], p_known_elsewhere text[] DEFAULT NULL)
RETURNS void LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_names text;
BEGIN
  IF p_schemas IS NULL THEN
    RETURN;
  END IF;
  IF cardinality(p_schemas) = 0 OR EXISTS (SELECT 1 FROM unnest(p_schemas) s WHERE s IS NULL OR s = '') THEN
    RAISE EXCEPTION 'the schema filter must name at least one schema and no empty name'
      USING ERRCODE = 'SR004';
  END IF;
  SELECT string_agg(quote_ident(s), ', ' ORDER BY s) INTO v_names
    FROM unnest(p_schemas) s WHERE NOT steep_repl.is_user_schema(s);
  IF v_names IS NOT NULL THEN
    RAISE EXCEPTION 'the schema filter names %, which steep-repl never compares (system schemas and its own)', v_names
      USING ERRCODE = 'SR004';
  END IF;
  SELECT string_agg(quote_ident(s), ', ' ORDER BY s) INTO v_names
    FROM unnest(p_schemas) s
   WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = s)
     AND NOT (s = ANY (coalesce(p_known_elsewhere, '{}')));
  IF v_names IS NOT NULL THEN
    RAISE EXCEPTION 'schema % does not exist in database %', v_names,
                    quote_ident(current_database())
                    || CASE WHEN p_known_elsewhere IS NOT NULL THEN ' nor in the source''s fingerprint set' ELSE '' END
      USING ERRCODE = 'SR004',
            HINT = coalesce('user schemas there: ' || (SELECT string_agg(quote_ident(nspname), ', ' ORDER BY nspname)
                                                       FROM pg_catalog.pg_namespace WHERE steep_repl.is_user_schema(nspname)),
                            'the database has no user schema');
  END IF;
END $$;

-- Every user table in one query over pg_catalog (never information_schema,
-- never a query per table). search_path is pinned so that types, defaults
-- and definitions come out schema-qualified and the fingerprint does not
-- depend on the caller's search_path.
CREATE FUNCTION steep_repl.table_fingerprints(p_schemas text[] DEFAULT NULL, p_require_schemas boolean DEFAULT true)
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
    SELECT c.oid, n.nspname::text AS nsp, c.relname::text AS rel, c.relkind, c.relreplident,
           c.relpersistence, c.relispartition, c.relpartbound
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p')
       AND c.relpersistence <> 't'
       AND steep_repl.is_user_schema(n.nspname)
       AND (p_schemas IS NULL OR n.nspname = ANY (p_schemas))
       -- an extension's own tables come with CREATE EXTENSION, not with schema sync
       AND NOT EXISTS (SELECT 1 FROM pg_depend e
                        WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
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

-- The set a client carries to the peer: one JSON array.
CREATE FUNCTION steep_repl.fingerprint_set(p_schemas text[] DEFAULT NULL, p_require_schemas boolean DEFAULT true)
RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_agg(to_jsonb(f) ORDER BY f.schema_name, f.table_name), '[]')
    FROM steep_repl.table_fingerprints(p_schemas, p_require_schemas) f
$$;

-- Stores this database's fingerprints under a node id (default: the local
-- node), replacing that node's earlier capture of the same schemas.
CREATE FUNCTION steep_repl.capture_fingerprints(p_node_id text DEFAULT NULL, p_schemas text[] DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_node text := coalesce(p_node_id, steep_repl.local_node_id());
  v_count integer;
BEGIN
  IF v_node IS NULL THEN
    RAISE EXCEPTION 'no node id given and this database has no local node'
      USING ERRCODE = 'SR004', HINT = 'register it with steep-repl node register <id> ... --local, or pass the node id';
  END IF;
  PERFORM steep_repl.check_schema_filter(p_schemas);
  DELETE FROM steep_repl.schema_fingerprints
   WHERE node_id = v_node AND (p_schemas IS NULL OR schema_name = ANY (p_schemas));
  INSERT INTO steep_repl.schema_fingerprints
         (node_id, schema_name, table_name, fingerprint, column_count, columns, table_facts, definition, captured_at)
  SELECT v_node, f.schema_name, f.table_name, f.fingerprint, f.column_count, f.columns, f.table_facts, f.definition, now()
    FROM steep_repl.table_fingerprints(p_schemas) f;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END $$;

-- A peer's set, checked for shape before anything trusts it.
CREATE FUNCTION steep_repl.fingerprint_rows(p_set jsonb)
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

CREATE FUNCTION steep_repl.ident_list(p_names jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_names IS NULL OR jsonb_typeof(p_names) <> 'array' THEN 'none'
              ELSE '(' || coalesce((SELECT string_agg(quote_ident(x), ', ' ORDER BY o)
                                     FROM jsonb_array_elements_text(p_names) WITH ORDINALITY y(x, o)), '') || ')' END
$$;

-- Per column and per key, how the target's table differs from the
-- source's. p_source and p_target are fingerprint rows as JSON.
CREATE FUNCTION steep_repl.table_differences(p_source jsonb, p_target jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
WITH sc AS (
  SELECT c, c ->> 'name' AS name, o FROM jsonb_array_elements(p_source -> 'columns') WITH ORDINALITY x(c, o)
), tc AS (
  SELECT c, c ->> 'name' AS name, o FROM jsonb_array_elements(p_target -> 'columns') WITH ORDINALITY x(c, o)
), pairs AS (
  SELECT coalesce(sc.name, tc.name) AS name, sc.c AS s, tc.c AS t, sc.o AS so, tc.o AS t_o,
         coalesce(sc.o, 100000 + tc.o) AS sort
    FROM sc FULL JOIN tc ON tc.name = sc.name
), common AS (
  SELECT name, s, t, sort, row_number() OVER (ORDER BY so) AS s_rank, row_number() OVER (ORDER BY t_o) AS t_rank
    FROM pairs WHERE s IS NOT NULL AND t IS NOT NULL
), d(sort, diff) AS (
  SELECT sort, jsonb_build_object('kind', 'column_missing', 'column', name, 'source', s, 'target', NULL,
           'detail', format('column %I %s is missing on the target', name, s ->> 'type'))
    FROM pairs WHERE t IS NULL
  UNION ALL
  SELECT sort, jsonb_build_object('kind', 'column_extra', 'column', name, 'source', NULL, 'target', t,
           'detail', format('column %I %s exists on the target only', name, t ->> 'type'))
    FROM pairs WHERE s IS NULL
  UNION ALL
  SELECT sort, jsonb_build_object('kind', 'column_type', 'column', name, 'source', s -> 'type', 'target', t -> 'type',
           'detail', format('column %I type differs: source %s, target %s', name, s ->> 'type', t ->> 'type'))
    FROM common WHERE s -> 'type' <> t -> 'type'
  UNION ALL
  SELECT sort, jsonb_build_object('kind', 'column_collation', 'column', name, 'source', s -> 'collation', 'target', t -> 'collation',
           'detail', format('column %I collation differs: source %s, target %s', name,
                            coalesce(s ->> 'collation', 'default'), coalesce(t ->> 'collation', 'default')))
    FROM common WHERE coalesce(s -> 'collation', 'null') <> coalesce(t -> 'collation', 'null')
  UNION ALL
  SELECT sort, jsonb_build_object('kind', 'column_default', 'column', name, 'source', s -> 'default', 'target', t -> 'default',
           'detail', CASE WHEN t ->> 'default' IS NULL THEN format('column %I has default %s on the source, none on the target', name, s ->> 'default')
                          WHEN s ->> 'default' IS NULL THEN format('column %I has default %s on the target, none on the source', name, t ->> 'default')
                          ELSE format('column %I default differs: source %s, target %s', name, s ->> 'default', t ->> 'default') END)
    FROM common WHERE coalesce(s -> 'default', 'null') <> coalesce(t -> 'default', 'null')
  UNION ALL
  SELECT sort, jsonb_build_object('kind', 'column_nullability', 'column', name, 'source', s -> 'not_null', 'target', t -> 'not_null',
           'detail', CASE WHEN (s ->> 'not_null')::boolean THEN format('column %I is NOT NULL on the source, nullable on the target', name)
                          ELSE format('column %I is nullable on the source, NOT NULL on the target', name) END)
    FROM common WHERE s -> 'not_null' <> t -> 'not_null'
  UNION ALL
  SELECT sort, jsonb_build_object('kind', 'column_identity', 'column', name, 'source', s -> 'identity', 'target', t -> 'identity',
           'detail', format('column %I identity differs: source %s, target %s', name,
                            coalesce('GENERATED ' || upper(s ->> 'identity') || ' AS IDENTITY', 'none'),
                            coalesce('GENERATED ' || upper(t ->> 'identity') || ' AS IDENTITY', 'none')))
    FROM common WHERE coalesce(s -> 'identity', 'null') <> coalesce(t -> 'identity', 'null')
  UNION ALL
  SELECT sort, jsonb_build_object('kind', 'column_generated', 'column', name,
           'source', jsonb_build_object('expression', s -> 'generated', 'kind', s -> 'generated_kind'),
           'target', jsonb_build_object('expression', t -> 'generated', 'kind', t -> 'generated_kind'),
           'detail', format('column %I generated expression differs: source %s, target %s', name,
                            coalesce(format('(%s) %s', s ->> 'generated', upper(s ->> 'generated_kind')), 'none'),
                            coalesce(format('(%s) %s', t ->> 'generated', upper(t ->> 'generated_kind')), 'none')))
    FROM common
   WHERE coalesce(s -> 'generated', 'null') <> coalesce(t -> 'generated', 'null')
      OR coalesce(s -> 'generated_kind', 'null') <> coalesce(t -> 'generated_kind', 'null')
  UNION ALL
  SELECT 200000, jsonb_build_object('kind', 'column_order',
           'source', (SELECT jsonb_agg(name ORDER BY s_rank) FROM common),
           'target', (SELECT jsonb_agg(name ORDER BY t_rank) FROM common),
           'detail', format('column order differs: source %s, target %s',
                            steep_repl.ident_list((SELECT jsonb_agg(name ORDER BY s_rank) FROM common)),
                            steep_repl.ident_list((SELECT jsonb_agg(name ORDER BY t_rank) FROM common))))
   WHERE EXISTS (SELECT 1 FROM common WHERE s_rank <> t_rank)
  UNION ALL
  SELECT 200001, jsonb_build_object('kind', 'primary_key',
           'source', p_source -> 'table_facts' -> 'primary_key', 'target', p_target -> 'table_facts' -> 'primary_key',
           'detail', format('primary key differs: source %s, target %s',
                            steep_repl.ident_list(p_source -> 'table_facts' -> 'primary_key'),
                            steep_repl.ident_list(p_target -> 'table_facts' -> 'primary_key')))
   WHERE coalesce(p_source -> 'table_facts' -> 'primary_key', 'null') <> coalesce(p_target -> 'table_facts' -> 'primary_key', 'null')
  UNION ALL
  SELECT 200002, jsonb_build_object('kind', 'replica_identity',
           'source', jsonb_build_object('mode', p_source -> 'table_facts' -> 'replica_identity', 'columns', p_source -> 'table_facts' -> 'replica_identity_columns'),
           'target', jsonb_build_object('mode', p_target -> 'table_facts' -> 'replica_identity', 'columns', p_target -> 'table_facts' -> 'replica_identity_columns'),
           'detail', format('replica identity differs: source %s%s, target %s%s',
                            p_source -> 'table_facts' ->> 'replica_identity',
                            CASE WHEN p_source -> 'table_facts' ->> 'replica_identity' = 'index'
                                 THEN ' ' || steep_repl.ident_list(p_source -> 'table_facts' -> 'replica_identity_columns') ELSE '' END,
                            p_target -> 'table_facts' ->> 'replica_identity',
                            CASE WHEN p_target -> 'table_facts' ->> 'replica_identity' = 'index'
                                 THEN ' ' || steep_repl.ident_list(p_target -> 'table_facts' -> 'replica_identity_columns') ELSE '' END))
   WHERE coalesce(p_source -> 'table_facts' -> 'replica_identity', 'null') <> coalesce(p_target -> 'table_facts' -> 'replica_identity', 'null')
      OR coalesce(p_source -> 'table_facts' -> 'replica_identity_columns', 'null') <> coalesce(p_target -> 'table_facts' -> 'replica_identity_columns', 'null')
  UNION ALL
  SELECT 200003, jsonb_build_object('kind', 'table_kind',
           'source', p_source -> 'table_facts' -> 'kind', 'target', p_target -> 'table_facts' -> 'kind',
           'detail', format('table kind differs: source %s, target %s',
                            p_source -> 'table_facts' ->> 'kind', p_target -> 'table_facts' ->> 'kind'))
   WHERE coalesce(p_source -> 'table_facts' -> 'kind', 'null') <> coalesce(p_target -> 'table_facts' -> 'kind', 'null')
)
SELECT coalesce(jsonb_agg(diff ORDER BY sort), '[]') FROM d
$$;

-- Run on the target with the source's set (fingerprint_set() there).
CREATE FUNCTION steep_repl.compare_fingerprints(p_source jsonb, p_schemas text[] DEFAULT NULL)
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
  ), tgt AS (
    SELECT l.* FROM steep_repl.table_fingerprints(p_schemas, false) l
  ), pairs AS (
    SELECT coalesce(s.schema_name, t.schema_name) AS schema_name, coalesce(s.table_name, t.table_name) AS table_name,
           CASE WHEN t.table_name IS NULL THEN 'REMOTE_ONLY'
                WHEN s.table_name IS NULL THEN 'LOCAL_ONLY'
                WHEN s.fingerprint = t.fingerprint THEN 'MATCH'
                ELSE 'MISMATCH' END AS status,
           s.fingerprint AS sf, t.fingerprint AS tf, to_jsonb(s) AS s, to_jsonb(t) AS t
      FROM src s FULL JOIN tgt t ON t.schema_name = s.schema_name AND t.table_name = s.table_name
  )
  SELECT p.schema_name, p.table_name, p.status, p.status IN ('MISMATCH', 'REMOTE_ONLY'), p.sf, p.tf,
         CASE p.status
           WHEN 'MATCH' THEN '[]'::jsonb
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

-- Compares and, when anything blocks, records schema.mismatch_detected on
-- this (the target) node.
CREATE FUNCTION steep_repl.detect_schema_drift(p_source jsonb, p_schemas text[], p_source_node text, p_target_node text, p_mode text DEFAULT 'strict')
RETURNS TABLE (schema_name text, table_name text, status text, blocking boolean,
               source_fingerprint text, target_fingerprint text, differences jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_rows jsonb;
BEGIN
  IF p_mode IS NULL OR p_mode NOT IN ('strict', 'auto', 'manual') THEN
    RAISE EXCEPTION 'unknown schema sync mode %', quote_nullable(p_mode)
      USING ERRCODE = 'SR004', HINT = 'modes: strict, auto, manual';
  END IF;
  SELECT coalesce(jsonb_agg(to_jsonb(c)), '[]') INTO v_rows FROM steep_repl.compare_fingerprints(p_source, p_schemas) c;
  IF EXISTS (SELECT 1 FROM jsonb_array_elements(v_rows) r WHERE (r ->> 'blocking')::boolean) THEN
    PERFORM steep_repl.emit_event('schema.mismatch_detected', p_target_node, jsonb_build_object(
      'source_node', p_source_node, 'target_node', p_target_node, 'mode', p_mode,
      'tables', (SELECT jsonb_agg(jsonb_build_object('schema_name', r ->> 'schema_name', 'table_name', r ->> 'table_name',
                                                    'status', r ->> 'status', 'differences', r -> 'differences'))
                   FROM jsonb_array_elements(v_rows) r WHERE (r ->> 'blocking')::boolean)));
  END IF;
  RETURN QUERY
  SELECT r ->> 'schema_name', r ->> 'table_name', r ->> 'status', (r ->> 'blocking')::boolean,
         r ->> 'source_fingerprint', r ->> 'target_fingerprint', r -> 'differences'
    FROM jsonb_array_elements(v_rows) r;
END $$;

-- The DDL plan (schema sync mode auto): statements that make the target's
-- tables match the source's. Runs on the target; identifiers always go
-- through %I, types and expressions are the source's own deparsed text.

CREATE FUNCTION steep_repl.column_definition(p_column jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT format('%I %s', p_column ->> 'name', p_column ->> 'type')
      || coalesce(' COLLATE ' || (p_column ->> 'collation'), '')
      || CASE WHEN p_column ->> 'generated' IS NOT NULL
                THEN format(' GENERATED ALWAYS AS (%s) %s', p_column ->> 'generated', upper(coalesce(p_column ->> 'generated_kind', 'stored')))
              WHEN p_column ->> 'identity' IS NOT NULL
                THEN format(' GENERATED %s AS IDENTITY', upper(p_column ->> 'identity'))
              WHEN p_column ->> 'default' IS NOT NULL
                THEN ' DEFAULT ' || (p_column ->> 'default')
              ELSE '' END
      || CASE WHEN (p_column ->> 'not_null')::boolean AND p_column ->> 'identity' IS NULL THEN ' NOT NULL' ELSE '' END
$$;

-- numeric(10,2) -> numeric, character varying(10)[] -> character varying[],
-- timestamp(3) with time zone -> timestamp with time zone.
CREATE FUNCTION steep_repl.type_without_modifiers(p_type text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT regexp_replace(p_type, '\([0-9, ]*\)', '', 'g')
$$;

-- How a column's values become the source's type: an assignment cast when
-- only the modifiers differ (errors rather than truncates), an explicit cast
-- otherwise, wrapping into or taking the first element of an array.
CREATE FUNCTION steep_repl.cast_expression(p_source jsonb, p_target jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN steep_repl.type_without_modifiers(p_source ->> 'type') = steep_repl.type_without_modifiers(p_target ->> 'type')
                THEN format('%I', p_source ->> 'name')
              WHEN p_source ->> 'type' LIKE '%]' AND p_target ->> 'type' NOT LIKE '%]'
                THEN format('ARRAY[%I]::%s', p_source ->> 'name', p_source ->> 'type')
              WHEN p_target ->> 'type' LIKE '%]' AND p_source ->> 'type' NOT LIKE '%]'
                THEN format('(%I)[1]::%s', p_source ->> 'name', p_source ->> 'type')
              ELSE format('%I::%s', p_source ->> 'name', p_source ->> 'type') END
$$;

-- A sequence a serial column's default needs (created before the column).
CREATE FUNCTION steep_repl.serial_sequence_ddl(p_table jsonb, p_column text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(array_agg(format('CREATE SEQUENCE IF NOT EXISTS %I.%I AS %s', s ->> 'schema', s ->> 'name', s ->> 'type')), '{}')
    FROM jsonb_array_elements(coalesce(p_table -> 'definition' -> 'serial_sequences', '[]')) s
   WHERE p_column IS NULL OR s ->> 'column' = p_column
$$;

CREATE FUNCTION steep_repl.sequence_owner_ddl(p_table jsonb, p_column text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(array_agg(format('ALTER SEQUENCE %I.%I OWNED BY %I.%I.%I', s ->> 'schema', s ->> 'name',
                                   p_table ->> 'schema_name', p_table ->> 'table_name', s ->> 'column')), '{}')
    FROM jsonb_array_elements(coalesce(p_table -> 'definition' -> 'serial_sequences', '[]')) s
   WHERE p_column IS NULL OR s ->> 'column' = p_column
$$;

CREATE FUNCTION steep_repl.replica_identity_ddl(p_table jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT format('ALTER TABLE %I.%I REPLICA IDENTITY ', p_table ->> 'schema_name', p_table ->> 'table_name')
      || CASE p_table -> 'table_facts' ->> 'replica_identity'
           WHEN 'full' THEN 'FULL'
           WHEN 'nothing' THEN 'NOTHING'
           WHEN 'index' THEN format('USING INDEX %I', p_table -> 'definition' ->> 'replica_identity_index')
           ELSE 'DEFAULT' END
$$;

-- Creates a table as the source has it: columns, primary key, unique,
-- check and exclusion constraints, indexes, replica identity, owned
-- sequences. Foreign keys come from foreign_key_ddl, after every table exists.
CREATE FUNCTION steep_repl.create_table_ddl(p_table jsonb) RETURNS text[]
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

CREATE FUNCTION steep_repl.foreign_key_ddl(p_table jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(array_agg(format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', p_table ->> 'schema_name', p_table ->> 'table_name',
                                   c ->> 'name', c ->> 'definition') ORDER BY o), '{}')
    FROM jsonb_array_elements(coalesce(p_table -> 'definition' -> 'constraints', '[]')) WITH ORDINALITY x(c, o)
   WHERE c ->> 'type' = 'f'
$$;

-- ALTER TABLE cannot put a column anywhere but last, nor turn a plain
-- column into a generated one: such tables are rebuilt instead.
CREATE FUNCTION steep_repl.needs_rebuild(p_source jsonb, p_target jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  WITH sc AS (SELECT c, c ->> 'name' AS name, o FROM jsonb_array_elements(p_source -> 'columns') WITH ORDINALITY x(c, o)),
       tc AS (SELECT c, c ->> 'name' AS name, o FROM jsonb_array_elements(p_target -> 'columns') WITH ORDINALITY x(c, o))
  SELECT ARRAY(SELECT name FROM sc ORDER BY o)
           IS DISTINCT FROM
         ARRAY(SELECT tc.name FROM tc WHERE EXISTS (SELECT 1 FROM sc WHERE sc.name = tc.name) ORDER BY tc.o)
           || ARRAY(SELECT sc.name FROM sc WHERE NOT EXISTS (SELECT 1 FROM tc WHERE tc.name = sc.name) ORDER BY sc.o)
      OR coalesce(p_source -> 'table_facts' -> 'kind', 'null') <> coalesce(p_target -> 'table_facts' -> 'kind', 'null')
      OR coalesce(p_source -> 'definition' -> 'partition_of', 'null') <> coalesce(p_target -> 'definition' -> 'partition_of', 'null')
      OR EXISTS (SELECT 1 FROM sc JOIN tc ON tc.name = sc.name
                  WHERE coalesce(sc.c -> 'generated_kind', 'null') <> coalesce(tc.c -> 'generated_kind', 'null'))
$$;

-- Rebuild keeping the rows: stash them, recreate the table as the source
-- has it, copy the shared columns back (cast where the type changed), move
-- sequences past the copied keys.
CREATE FUNCTION steep_repl.rebuild_table_ddl(p_source jsonb, p_target jsonb, p_stash text) RETURNS text[]
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

-- Column by column ALTERs for a table whose columns can stay in place.
CREATE FUNCTION steep_repl.alter_table_ddl(p_source jsonb, p_target jsonb) RETURNS text[]
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
  RETURN v_ddl;
END $$;

CREATE FUNCTION steep_repl.schema_sync_plan(p_source jsonb, p_schemas text[] DEFAULT NULL)
RETURNS TABLE (step integer, schema_name text, table_name text, ddl text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  v_sources jsonb;
  v_targets jsonb;
  v_key text;
  v_src jsonb;
  v_tgt jsonb;
  v_stmts text[];
  v_fks jsonb := '[]';
  v_stash integer := 0;
  v_stmt text;
  r record;
BEGIN
  SELECT jsonb_object_agg(format('%I.%I', s.schema_name, s.table_name), to_jsonb(s)) INTO v_sources
    FROM steep_repl.fingerprint_rows(p_source) s;
  SELECT jsonb_object_agg(format('%I.%I', t.schema_name, t.table_name), to_jsonb(t)) INTO v_targets
    FROM steep_repl.table_fingerprints(p_schemas, false) t;
  step := 0;
  FOR r IN SELECT c.schema_name, c.table_name, c.status
             FROM steep_repl.compare_fingerprints(p_source, p_schemas) c
            WHERE c.blocking
            ORDER BY c.status = 'MISMATCH',
                     (v_sources -> format('%I.%I', c.schema_name, c.table_name) -> 'definition' ->> 'partition_of') IS NOT NULL,
                     c.schema_name, c.table_name LOOP
    v_key := format('%I.%I', r.schema_name, r.table_name);
    v_src := v_sources -> v_key;
    v_tgt := v_targets -> v_key;
    schema_name := r.schema_name;
    table_name := r.table_name;
    v_stmts := '{}';
    IF r.status = 'REMOTE_ONLY' THEN
      IF to_regnamespace(quote_ident(r.schema_name)) IS NULL THEN
        v_stmts := ARRAY[format('CREATE SCHEMA IF NOT EXISTS %I', r.schema_name)];
      END IF;
      v_stmts := v_stmts || steep_repl.create_table_ddl(v_src);
      v_fks := v_fks || jsonb_build_array(v_src);
    ELSIF steep_repl.needs_rebuild(v_src, v_tgt) THEN
      v_stash := v_stash + 1;
      v_stmts := steep_repl.rebuild_table_ddl(v_src, v_tgt, 'steep_repl_stash_' || v_stash);
      v_fks := v_fks || jsonb_build_array(v_src);
    ELSE
      v_stmts := steep_repl.alter_table_ddl(v_src, v_tgt);
    END IF;
    FOREACH v_stmt IN ARRAY v_stmts LOOP
      step := step + 1;
      ddl := v_stmt;
      RETURN NEXT;
    END LOOP;
  END LOOP;
  FOR v_src IN SELECT * FROM jsonb_array_elements(v_fks) LOOP
    schema_name := v_src ->> 'schema_name';
    table_name := v_src ->> 'table_name';
    FOREACH v_stmt IN ARRAY steep_repl.foreign_key_ddl(v_src) LOOP
      step := step + 1;
      ddl := v_stmt;
      RETURN NEXT;
    END LOOP;
  END LOOP;
END $$;

-- Applies the plan in the caller's transaction, re-compares, and records
-- schema.sync_applied. Any failure raises and leaves nothing changed.
CREATE FUNCTION steep_repl.apply_schema_sync(p_source jsonb, p_schemas text[], p_source_node text, p_target_node text)
RETURNS TABLE (step integer, schema_name text, table_name text, ddl text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_plan jsonb;
  v_item jsonb;
  v_left text;
BEGIN
  SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.step), '[]') INTO v_plan
    FROM steep_repl.schema_sync_plan(p_source, p_schemas) p;
  FOR v_item IN SELECT * FROM jsonb_array_elements(v_plan) LOOP
    BEGIN
      EXECUTE v_item ->> 'ddl';
    EXCEPTION WHEN OTHERS THEN
      RAISE EXCEPTION 'schema sync step % on table %.% failed: %', v_item ->> 'step',
        quote_ident(v_item ->> 'schema_name'), quote_ident(v_item ->> 'table_name'), SQLERRM
        USING ERRCODE = 'SR005',
              DETAIL = 'statement: ' || (v_item ->> 'ddl'),
              HINT = 'nothing was changed (the plan runs in one transaction); align this table by hand or remove what blocks the statement';
    END;
  END LOOP;
  SELECT string_agg(format('%I.%I: %s', c.schema_name, c.table_name, c.differences -> 0 ->> 'detail'), '; ') INTO v_left
    FROM steep_repl.compare_fingerprints(p_source, p_schemas) c WHERE c.blocking;
  IF v_left IS NOT NULL THEN
    RAISE EXCEPTION 'schema sync applied its plan but tables still differ: %', v_left
      USING ERRCODE = 'SR005', HINT = 'nothing was changed (the plan runs in one transaction); align these tables by hand';
  END IF;
  IF jsonb_array_length(v_plan) > 0 THEN
    PERFORM steep_repl.emit_event('schema.sync_applied', p_target_node, jsonb_build_object(
      'source_node', p_source_node, 'target_node', p_target_node, 'statements', jsonb_array_length(v_plan),
      'tables', (SELECT jsonb_agg(DISTINCT format('%I.%I', e ->> 'schema_name', e ->> 'table_name')) FROM jsonb_array_elements(v_plan) e),
      'ddl', (SELECT jsonb_agg(e -> 'ddl' ORDER BY (e ->> 'step')::integer) FROM jsonb_array_elements(v_plan) e)));
  END IF;
  RETURN QUERY
  SELECT (e ->> 'step')::integer, e ->> 'schema_name', e ->> 'table_name', e ->> 'ddl'
    FROM jsonb_array_elements(v_plan) e ORDER BY (e ->> 'step')::integer;
END $$;
