import type { MergePhase, MergeStep } from './mergeStatus';
import { Queryable } from './queryable';

// Fields left out stay as they were; error null clears it.
export interface MergeRunReport {
  phase?: MergePhase;
  step?: MergeStep;
  percent?: number;
  tables_done?: number;
  rows_identical?: number;
  rows_only_a?: number;
  rows_only_b?: number;
  rows_conflicting?: number;
  rows_to_a?: number;
  rows_to_b?: number;
  lsn_a?: string | null;
  lsn_b?: string | null;
  error?: string | null;
}

export async function reportMergeProgress(db: Queryable, mergeId: number, report: MergeRunReport): Promise<void> {
  await db.query('SELECT steep_repl.report_merge_progress($1, $2)', [mergeId, report]);
}
