import { Queryable } from './queryable';

export interface MergeCancelRequested {
  merge_id: number;
  node_id: string;
  // true: its job had not started, the run is cancelled already (on A)
  cancelled: boolean;
  cancel_requested?: boolean;
  job_id?: number;
  // the run's state (on A) or the node's init state (on B)
  state: string;
  // on B: node A, whose agent runs the merge
  coordinator?: string;
}

// On A's database (the run) or B's (its init_progress; the job polls it).
export async function cancelMerge(db: Queryable, nodeId: string): Promise<MergeCancelRequested> {
  return (await db.query('SELECT steep_repl.cancel_merge($1) AS r', [nodeId])).rows[0].r;
}
