import type { MergeStatus } from './mergeStatus';
import { Queryable } from './queryable';

// The node's newest merge run in this database (as node A or B), null if none.
export async function latestMerge(db: Queryable, nodeId: string): Promise<MergeStatus | null> {
  return (await db.query('SELECT steep_repl.latest_merge($1) AS r', [nodeId])).rows[0].r;
}
