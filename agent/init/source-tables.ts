// What the source replicates: its user tables (never steep_repl's, the job
// queue's or the migration tool's own, so each node keeps its own state),
// with the row and byte totals progress is measured against.
import { Client } from 'pg';

export interface SourceTable {
  schema_name: string;
  table_name: string;
  partitioned: boolean;
  // false when neither a primary key nor a replica identity lets UPDATE and
  // DELETE replicate.
  has_identity: boolean;
  rows_total: number;
  bytes_total: number;
}

export const internalSchemas = ['steep_repl', 'graphile_worker', 'graphile_migrate'];

// Partitioned tables are listed by their root (published via the root);
// leaves carry the rows and bytes. Extension-owned tables are not user data.
const userTablesSql = `
  WITH tables AS (
    SELECT c.oid, n.nspname, c.relname, c.relkind, c.relreplident
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence = 'p'
      AND n.nspname <> ALL ($1::text[]) AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  ), leaves AS (
    SELECT t.oid AS root, coalesce(pt.relid, t.oid) AS leaf
    FROM tables t LEFT JOIN LATERAL pg_partition_tree(t.oid) pt ON t.relkind = 'p' AND pt.isleaf
  )
  SELECT t.nspname AS schema_name, t.relname AS table_name, t.relkind = 'p' AS partitioned,
         (t.relreplident = 'f'
          OR (t.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = t.oid AND i.indisprimary))
          OR (t.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = t.oid AND i.indisreplident)))
           AS has_identity,
         coalesce(sum(greatest(lc.reltuples, 0)), 0)::float8 AS rows_total,
         coalesce(sum(pg_table_size(l.leaf)), 0)::float8 AS bytes_total,
         bool_or(lc.reltuples < 0) AS never_analyzed,
         array_agg(format('%I.%I', ln.nspname, lc.relname)) FILTER (WHERE lc.reltuples < 0) AS unanalyzed
  FROM tables t
  JOIN leaves l ON l.root = t.oid
  JOIN pg_class lc ON lc.oid = l.leaf JOIN pg_namespace ln ON ln.oid = lc.relnamespace
  GROUP BY t.oid, t.nspname, t.relname, t.relkind, t.relreplident
  ORDER BY t.nspname, t.relname`;

// Row counts come from reltuples; a table never analyzed (-1) is analyzed
// first so its percentage means something.
export async function listSourceTables(source: Client): Promise<SourceTable[]> {
  let { rows } = await source.query(userTablesSql, [internalSchemas]);
  const unanalyzed: string[] = rows.flatMap((r) => r.unanalyzed ?? []);
  if (unanalyzed.length) {
    await source.query(`ANALYZE ${unanalyzed.join(', ')}`);
    ({ rows } = await source.query(userTablesSql, [internalSchemas]));
  }
  return rows.map((r) => ({
    schema_name: r.schema_name,
    table_name: r.table_name,
    partitioned: r.partitioned,
    has_identity: r.has_identity,
    rows_total: Math.round(Number(r.rows_total)),
    bytes_total: Math.round(Number(r.bytes_total)),
  }));
}
