// Foreign keys of the merged tables: the order the exchange writes them in
// (parents first), and the check it makes itself, since its writers run
// as replica (session_replication_role) and PostgreSQL checks none.
import { Client } from 'pg';
import { tableLabel } from '../../lib/identifiers';
import { sameTable, TableName } from '../../lib/sql/queryable';
import { ident, qualified } from '../replication/quoting';
import { ExchangeSql } from './exchange-sql';

export interface ForeignKey {
  name: string;
  table: TableName;
  columns: string[];
  referenced: TableName;
  referencedColumns: string[];
}

// The foreign keys declared on these tables (a partition's copies of its
// parent's left out), read on one node.
export async function foreignKeys(client: Client, tables: TableName[]): Promise<ForeignKey[]> {
  if (!tables.length) return [];
  const { rows } = await client.query(
    `SELECT c.conname::text AS name, n.nspname::text AS schema_name, r.relname::text AS table_name,
            fn.nspname::text AS ref_schema, f.relname::text AS ref_table,
            ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i) AS columns,
            ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i) AS ref_columns
     FROM pg_catalog.pg_constraint c
     JOIN pg_catalog.pg_class r ON r.oid = c.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
     JOIN pg_catalog.pg_class f ON f.oid = c.confrelid JOIN pg_catalog.pg_namespace fn ON fn.oid = f.relnamespace
     JOIN jsonb_to_recordset($1::jsonb) AS t(schema_name text, table_name text) ON t.schema_name = n.nspname AND t.table_name = r.relname
     WHERE c.contype = 'f' AND c.conparentid = 0
     ORDER BY 2, 3, 1`,
    [JSON.stringify(tables.map((t) => ({ schema_name: t.schema_name, table_name: t.table_name })))],
  );
  return rows.map((r) => ({
    name: r.name,
    table: { schema_name: r.schema_name, table_name: r.table_name },
    columns: r.columns,
    referenced: { schema_name: r.ref_schema, table_name: r.ref_table },
    referencedColumns: r.ref_columns,
  }));
}

// Parents before their children; a cycle (or a self reference) keeps the
// given order for the tables in it: the check after the writes covers them.
export function parentsFirst<T extends TableName>(tables: T[], keys: ForeignKey[]): T[] {
  const out: T[] = [];
  const placed = new Set<T>();
  const parents = (t: T) =>
    keys.filter((k) => sameTable(k.table, t) && !sameTable(k.referenced, t)).map((k) => tables.find((p) => sameTable(p, k.referenced)));
  const visit = (t: T, path: Set<T>) => {
    if (placed.has(t) || path.has(t)) return;
    path.add(t);
    for (const p of parents(t)) if (p) visit(p, path);
    path.delete(t);
    placed.add(t);
    out.push(t);
  };
  for (const t of tables) visit(t, new Set());
  return out;
}

// keys checked per statement
const keysPerCheck = 5000;

// The first of these rows (keys written on this node) whose referenced row
// is missing, MATCH SIMPLE: a row with a NULL in the foreign key refers to
// nothing. undefined: every one has its parent.
export async function firstOrphan(writer: Client, key: ForeignKey, ex: ExchangeSql, keys: string[]): Promise<string | undefined> {
  const present = key.columns.map((c) => `t.${ident(c)} IS NOT NULL`);
  const match = key.columns.map((c, i) => `p.${ident(key.referencedColumns[i])} = t.${ident(c)}`);
  for (let i = 0; i < keys.length; i += keysPerCheck) {
    const within = ex.existing(keys.slice(i, i + keysPerCheck));
    const { rows: orphans } = await writer.query(
      `${within.text} AND ${present.join(' AND ')}
       AND NOT EXISTS (SELECT 1 FROM ${qualified(key.referenced)} p WHERE ${match.join(' AND ')}) LIMIT 1`,
      within.values,
    );
    if (orphans.length) return orphans[0].k;
  }
  return undefined;
}

export const describeForeignKey = (key: ForeignKey): string =>
  `${JSON.stringify(key.name)} of ${tableLabel(key.table)} (${key.columns.map((c) => JSON.stringify(c)).join(', ')}) → ${tableLabel(key.referenced)}`;
