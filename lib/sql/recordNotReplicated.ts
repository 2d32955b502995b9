import { Queryable, TableName } from './queryable';

export interface NotReplicated extends TableName {
  label: string;
  reason: string;
}

// Run on the target: the source's relations the init goes ahead without
// (init_progress.not_replicated).
export async function recordNotReplicated(db: Queryable, nodeId: string, relations: Array<TableName & { reason: string }>): Promise<NotReplicated[]> {
  const { rows } = await db.query('SELECT steep_repl.record_not_replicated($1, $2::jsonb) AS list', [nodeId, JSON.stringify(relations)]);
  return rows[0].list;
}
