import type { MergeNodeState, MergeStep } from './mergeStatus';
import { Queryable } from './queryable';

// init_progress fields; left out stay as they were. error null clears merge.error.
export interface MergeNodeProgress {
  phase?: 'preparing' | 'copying' | 'catching_up' | 'verifying';
  overall_percent?: number;
  tables_done?: number;
  tables_total?: number;
  current_table?: string | null;
  rows_copied?: number;
  rows_total?: number | null;
  rows_per_second?: number | null;
  eta_seconds?: number | null;
  error?: string | null;
}

// On the node's own database (also on an exchange's writer, inside its
// transaction). Returns the node's merge and whether a cancel was asked on it.
export async function mergeNodeStep(
  db: Queryable,
  nodeId: string,
  mergeId: number,
  step: MergeStep,
  state: 'copying' | 'catching_up' | null = null,
  progress: MergeNodeProgress = {},
): Promise<MergeNodeState & { node_state: string; cancel_requested_at: string | null }> {
  return (await db.query('SELECT steep_repl.merge_node_step($1, $2, $3, $4, $5) AS r', [nodeId, mergeId, step, state, progress])).rows[0].r;
}
