-- Why logical replication cannot carry a relation's rows, or NULL when it
-- can: its changes must be written to the WAL by an ordinary or partitioned
-- table. A partitioned table is replicated through its root (publish_via_
-- partition_root), so one unlogged or foreign partition leaves part of its
-- rows behind. The reason is the source's: fingerprints carry it as
-- table_facts.not_replicated, replicated_tables leaves such relations out.
CREATE OR REPLACE FUNCTION steep_repl.not_replicated_reason(p_relid oid, p_relkind "char", p_relpersistence "char")
RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN p_relkind = 'f' THEN 'foreign table'
    WHEN p_relkind = 'm' THEN 'materialized view'
    WHEN p_relpersistence = 'u' THEN 'unlogged table'
    WHEN p_relkind = 'p' THEN
      (SELECT format('partition %I.%I is %s', n.nspname, c.relname,
                     CASE WHEN c.relkind = 'f' THEN 'a foreign table' ELSE 'unlogged' END)
         FROM pg_catalog.pg_partition_tree(p_relid) pt
         JOIN pg_catalog.pg_class c ON c.oid = pt.relid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'f' OR c.relpersistence = 'u'
        ORDER BY pt.level, n.nspname, c.relname LIMIT 1)
  END
$$;
