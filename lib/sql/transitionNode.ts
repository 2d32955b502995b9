import { Queryable } from './queryable';

// One init_state transition, checked by the state machine (SR003 if illegal).
export async function transitionNode(db: Queryable, nodeId: string, to: string, reason: string): Promise<void> {
  await db.query('SELECT steep_repl.transition($1, $2, $3)', [nodeId, to, { reason }]);
}
