import type { MergeRun, MergeTableStatus } from './mergeStatus';
import { LabelledTable, Queryable } from './queryable';

// The run as its job takes it (steep_repl.claim_merge): running; resumed
// when an earlier attempt had claimed it. Tables in scope order.
export interface ClaimedMerge extends MergeRun {
  resumed: boolean;
  tables: Array<LabelledTable & { status: MergeTableStatus }>;
}

// null: nothing to run (ended already, or gone).
export async function claimMerge(db: Queryable, mergeId: number): Promise<ClaimedMerge | null> {
  return (await db.query('SELECT steep_repl.claim_merge($1) AS r', [mergeId])).rows[0].r;
}
