import type { MergeFailureKind, MergeStatus } from './mergeStatus';
import { Queryable } from './queryable';

export type MergeOutcome =
  | { outcome: 'analyzed' | 'resolving' | 'merged' | 'differs'; details?: Record<string, unknown> }
  | { outcome: 'failed'; error: string; kind: MergeFailureKind; hint?: string; details?: Record<string, unknown> }
  // exchanged: rows had been exchanged (they stay)
  | { outcome: 'cancelled'; exchanged: boolean; details?: Record<string, unknown> };

// Ends the run (totals from its tables) and emits merge.completed, merge.failed or merge.cancelled.
export async function finishMerge(db: Queryable, mergeId: number, end: MergeOutcome): Promise<MergeStatus> {
  const details =
    end.outcome === 'failed'
      ? { ...end.details, error: end.error, kind: end.kind, hint: end.hint }
      : end.outcome === 'cancelled'
        ? { ...end.details, exchanged: end.exchanged }
        : (end.details ?? {});
  return (await db.query('SELECT steep_repl.finish_merge($1, $2, $3) AS r', [mergeId, end.outcome, details])).rows[0].r;
}
