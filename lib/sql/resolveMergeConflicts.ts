import type { MergeResolution } from './mergeStatus';
import { Queryable } from './queryable';

export interface MergeConflictResolution {
  resolution: MergeResolution;
  // a table's conflicts ('s.t', 't', '"Odd Name"'); default every table
  table?: string;
  // one key ({column: value}); 'row' needs it
  key?: Record<string, unknown>;
  // 'row': the row both nodes get
  row?: Record<string, unknown>;
}

// Returns how many conflicts got the resolution.
export async function resolveMergeConflicts(db: Queryable, mergeId: number, r: MergeConflictResolution): Promise<number> {
  return (
    await db.query('SELECT steep_repl.resolve_merge_conflicts($1, $2, $3, $4, $5) AS n', [
      mergeId,
      r.resolution,
      r.table ?? null,
      r.key ?? null,
      r.row ?? null,
    ])
  ).rows[0].n;
}
