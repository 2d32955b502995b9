// The target's copies of the planned tables: which already hold rows, and
// emptying them without the change replicating anywhere.
import { Client } from 'pg';
import { qualified, literal } from './quoting';

export interface TableName {
  schema_name: string;
  table_name: string;
}

// The relations of the list that exist on the target, asked in one query.
export async function existingRelations<T extends TableName>(target: Client, relations: T[]): Promise<T[]> {
  if (!relations.length) return [];
  const { rows } = await target.query(
    'SELECT to_regclass(name) IS NOT NULL AS exists FROM unnest($1::text[]) WITH ORDINALITY AS r(name, i) ORDER BY i',
    [relations.map(qualified)],
  );
  return relations.filter((_, i) => rows[i].exists);
}

// Tables the target does not have yet are left to schema sync / CREATE
// SUBSCRIPTION, which names them.
export async function tablesWithRows(target: Client, tables: TableName[]): Promise<TableName[]> {
  const found: TableName[] = [];
  for (const t of await existingRelations(target, tables)) {
    const { rows } = await target.query(`SELECT EXISTS (SELECT 1 FROM ${qualified(t)}) AS has_rows`);
    if (rows[0].has_rows) found.push(t);
  }
  return found;
}

// A TRUNCATE made under a replication origin is marked with that origin in
// the WAL; subscriptions with origin = none (every steep-repl subscription)
// skip it, so emptying a table here never empties it on a peer.
export async function truncateWithoutReplicating(target: Client, tables: TableName[]): Promise<void> {
  const existing = await existingRelations(target, tables);
  if (!existing.length) return;
  const origin = `steep_repl_local_${(await target.query('SELECT oid::int8 AS oid FROM pg_database WHERE datname = current_database()')).rows[0].oid}`;
  try {
    await target.query(
      `SELECT pg_replication_origin_create(${literal(origin)})
       WHERE NOT EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = ${literal(origin)})`,
    );
  } catch (err) {
    if ((err as { code?: string }).code !== '23505') throw err;
  }
  await target.query('SELECT pg_replication_origin_session_setup($1)', [origin]);
  try {
    await target.query(`TRUNCATE ${existing.map(qualified).join(', ')}`);
  } finally {
    await target.query('SELECT pg_replication_origin_session_reset()');
  }
}
