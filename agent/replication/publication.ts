// The per-pair publication on the source, over the tables of the plan.
// Partitioned tables publish through their root so the target may
// partition differently (or not at all).
import { Client } from 'pg';
import { sameTable, TableName } from '../../lib/sql/queryable';
import { ident, qualified } from './quoting';

export async function publicationExists(source: Client, name: string): Promise<boolean> {
  const { rows } = await source.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [name]);
  return rows.length > 0;
}

// Returns false when it existed already (a resumed init).
export async function ensurePublication(source: Client, name: string, tables: TableName[]): Promise<boolean> {
  if (await publicationExists(source, name)) return false;
  const scope = tables.length ? `FOR TABLE ${tables.map(qualified).join(', ')}` : '';
  await source.query(`CREATE PUBLICATION ${ident(name)} ${scope} WITH (publish_via_partition_root = true)`);
  return true;
}

export async function dropPublication(source: Client, name: string): Promise<void> {
  await source.query(`DROP PUBLICATION IF EXISTS ${ident(name)}`);
}

// The tables a publication lists itself (pg_publication_rel: roots, not
// the partitions pg_publication_tables may show).
export async function publicationMembers(source: Client, name: string): Promise<TableName[]> {
  const { rows } = await source.query(
    `SELECT n.nspname AS schema_name, c.relname AS table_name
     FROM pg_publication p JOIN pg_publication_rel pr ON pr.prpubid = p.oid
     JOIN pg_class c ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE p.pubname = $1 ORDER BY 1, 2`,
    [name],
  );
  return rows;
}

// A reinit takes its tables out and puts them back; only those not there
// yet (or still there) are named, so a resumed step runs again safely.
export async function setPublicationMembership(source: Client, name: string, tables: TableName[], member: boolean): Promise<TableName[]> {
  const now = await publicationMembers(source, name);
  const inIt = (t: TableName) => now.some((m) => sameTable(m, t));
  const change = tables.filter((t) => inIt(t) !== member);
  if (change.length) await source.query(`ALTER PUBLICATION ${ident(name)} ${member ? 'ADD' : 'DROP'} TABLE ${change.map(qualified).join(', ')}`);
  return change;
}
