-- What an init copies from this node (its source side): the user tables
-- logical replication can carry (not_replicated_reason is NULL: no unlogged
-- table, no unlogged or foreign partition), partitioned ones by their root
-- (published via the root, so the target may partition differently), with
-- the row and byte totals progress is measured against. Leaves carry the rows and bytes; rows come from
-- reltuples, and tables never analyzed are listed in unanalyzed so the
-- caller can ANALYZE them first. has_identity is false when neither a
-- primary key nor a replica identity lets UPDATE and DELETE replicate.
CREATE OR REPLACE FUNCTION steep_repl.replicated_tables()
RETURNS TABLE (schema_name text, table_name text, label text, partitioned boolean, has_identity boolean,
               rows_total bigint, bytes_total bigint, unanalyzed text[])
LANGUAGE sql STABLE AS $$
  WITH tables AS (
    SELECT c.oid, u.schema_name, u.table_name, c.relkind, c.relreplident
    FROM steep_repl.user_tables() u JOIN pg_catalog.pg_class c ON c.oid = u.relid
    WHERE NOT c.relispartition AND steep_repl.not_replicated_reason(c.oid, c.relkind, c.relpersistence) IS NULL
  ), leaves AS (
    SELECT t.oid AS root, coalesce(pt.relid, t.oid) AS leaf
    FROM tables t LEFT JOIN LATERAL pg_catalog.pg_partition_tree(t.oid) pt ON t.relkind = 'p' AND pt.isleaf
  )
  SELECT t.schema_name, t.table_name, format('%I.%I', t.schema_name, t.table_name), t.relkind = 'p',
         (t.relreplident = 'f'
          OR (t.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = t.oid AND i.indisprimary))
          OR (t.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = t.oid AND i.indisreplident))),
         round(coalesce(sum(greatest(lc.reltuples, 0)), 0))::bigint,
         coalesce(sum(pg_catalog.pg_table_size(l.leaf)), 0)::bigint,
         array_agg(format('%I.%I', ln.nspname, lc.relname)) FILTER (WHERE lc.reltuples < 0)
  FROM tables t
  JOIN leaves l ON l.root = t.oid
  JOIN pg_catalog.pg_class lc ON lc.oid = l.leaf JOIN pg_catalog.pg_namespace ln ON ln.oid = lc.relnamespace
  GROUP BY t.oid, t.schema_name, t.table_name, t.relkind, t.relreplident
  ORDER BY t.schema_name, t.table_name
$$;
