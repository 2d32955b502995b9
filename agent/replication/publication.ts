// The per-pair publication on the source, over the tables of the plan.
// Partitioned tables publish through their root so the target may
// partition differently (or not at all).
import { Client } from 'pg';
import { TableName } from '../../lib/sql/queryable';
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
