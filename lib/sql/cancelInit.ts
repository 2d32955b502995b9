import { Queryable } from './queryable';

export interface CancelRequested {
  node_id: string;
  // true when nothing had started and the node is uninitialized already
  cancelled: boolean;
  cancel_requested?: boolean;
  job_id?: number;
  state: string;
  // a merge's cancel (cancel_init hands it to cancel_merge): the run, and
  // on node B the coordinator whose agent stops it
  merge_id?: number;
  coordinator?: string;
}

export async function cancelInit(db: Queryable, nodeId: string): Promise<CancelRequested> {
  return (await db.query('SELECT steep_repl.cancel_init($1) AS r', [nodeId])).rows[0].r;
}
