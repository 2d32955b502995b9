// The target's copies of the planned tables.
import { Client } from 'pg';
import { TableName } from '../../lib/sql/queryable';
import { qualified } from './quoting';

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
export async function tablesWithRows<T extends TableName>(target: Client, tables: T[]): Promise<T[]> {
  const found: T[] = [];
  for (const t of await existingRelations(target, tables)) {
    const { rows } = await target.query(`SELECT EXISTS (SELECT 1 FROM ${qualified(t)}) AS has_rows`);
    if (rows[0].has_rows) found.push(t);
  }
  return found;
}
