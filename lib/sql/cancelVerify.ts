import { Queryable } from './queryable';

export interface VerifyCancelRequested {
  verify_id: number;
  node_id: string;
  // true: its job had not started, the run is cancelled already
  cancelled: boolean;
  cancel_requested?: boolean;
  job_id?: number;
  state: string;
}

export async function cancelVerify(db: Queryable, nodeId: string): Promise<VerifyCancelRequested> {
  return (await db.query('SELECT steep_repl.cancel_verify($1) AS r', [nodeId])).rows[0].r;
}
