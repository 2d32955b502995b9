-- Run on the source for a direct init: the relations its parts read, one
-- row per planned table (p_tables: [{schema_name, table_name}]) that holds
-- rows itself, or per leaf partition of a partitioned one. bytes: heap plus
-- TOAST (what a part's size is measured in; indexes do not count); blocks:
-- the heap's pages (ctid ranges); rows: reltuples; key_column: a
-- single-column integer primary key to split by, else NULL.
CREATE OR REPLACE FUNCTION steep_repl.copy_leaves(p_tables jsonb)
RETURNS TABLE (schema_name text, table_name text, leaf_schema text, leaf_name text,
               bytes bigint, blocks bigint, rows_estimate bigint, key_column text)
LANGUAGE sql STABLE AS $$
  SELECT t.schema_name, t.table_name, ln.nspname, lc.relname,
         pg_catalog.pg_table_size(lc.oid),
         pg_catalog.pg_relation_size(lc.oid) / current_setting('block_size')::bigint,
         greatest(lc.reltuples, 0)::bigint,
         (SELECT a.attname::text FROM pg_catalog.pg_index i
            JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
           WHERE i.indrelid = lc.oid AND i.indisprimary AND i.indnkeyatts = 1
             AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype))
  FROM jsonb_to_recordset(p_tables) AS t(schema_name text, table_name text)
  JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema_name
  JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.table_name
  CROSS JOIN LATERAL (SELECT c.oid AS relid WHERE c.relkind <> 'p'
                      UNION ALL
                      SELECT pt.relid FROM pg_catalog.pg_partition_tree(c.oid) pt WHERE c.relkind = 'p' AND pt.isleaf) leaf
  JOIN pg_catalog.pg_class lc ON lc.oid = leaf.relid
  JOIN pg_catalog.pg_namespace ln ON ln.oid = lc.relnamespace
  ORDER BY 1, 2, 3, 4
$$;
