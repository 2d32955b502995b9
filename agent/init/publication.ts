// The per-pair publication on the source, over the tables of the plan.
import { Client } from 'pg';
import { SourceTable } from './source-tables';
import { ident, qualified } from './quoting';

export async function publicationExists(source: Client, name: string): Promise<boolean> {
  const { rows } = await source.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [name]);
  return rows.length > 0;
}

// Partitioned tables publish through their root so the target may partition
// differently (or not at all).
export async function ensurePublication(source: Client, name: string, tables: SourceTable[]): Promise<boolean> {
  if (await publicationExists(source, name)) return false;
  const list = tables.map(qualified).join(', ');
  const scope = tables.length ? `FOR TABLE ${list}` : '';
  await source.query(`CREATE PUBLICATION ${ident(name)} ${scope} WITH (publish_via_partition_root = true)`);
  return true;
}

export async function dropPublication(source: Client, name: string): Promise<void> {
  await source.query(`DROP PUBLICATION IF EXISTS ${ident(name)}`);
}
