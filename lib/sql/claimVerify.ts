import { LabelledTable, Queryable } from './queryable';

// The run as its job starts it (steep_repl.claim_verify): running, every
// table pending again.
export interface ClaimedVerify {
  verify_id: number;
  node_id: string;
  peer_node_id: string | null;
  reason: 'verify' | 'reinit';
  subscription: string;
  key_limit: number;
  cancel_requested_at: string | null;
  tables: LabelledTable[];
}

// null: nothing to run (ended already, or gone).
export async function claimVerify(db: Queryable, verifyId: number): Promise<ClaimedVerify | null> {
  return (await db.query('SELECT steep_repl.claim_verify($1) AS r', [verifyId])).rows[0].r;
}
