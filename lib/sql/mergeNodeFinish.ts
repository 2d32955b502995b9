import { Queryable, TableName } from './queryable';
import { NodeRow } from './registerNode';

export interface MergeDivergence extends TableName {
  rows_missing: number;
  rows_extra: number;
  rows_different: number;
}

export type MergeNodeEnd =
  | { outcome: 'synchronized' | 'cancelled' | 'unchanged'; details?: Record<string, unknown> }
  | { outcome: 'diverged'; divergence: MergeDivergence[]; details?: Record<string, unknown> }
  | { outcome: 'failed'; error: string; hint?: string; details?: Record<string, unknown> };

// On the node's own database; returns its registry row afterwards.
export async function mergeNodeFinish(db: Queryable, nodeId: string, mergeId: number, end: MergeNodeEnd): Promise<NodeRow> {
  const details =
    end.outcome === 'diverged'
      ? { ...end.details, divergence: end.divergence }
      : end.outcome === 'failed'
        ? { ...end.details, error: end.error, hint: end.hint }
        : (end.details ?? {});
  return (await db.query('SELECT * FROM steep_repl.merge_node_finish($1, $2, $3, $4)', [nodeId, mergeId, end.outcome, details])).rows[0];
}
