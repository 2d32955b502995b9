import { Queryable } from './queryable';
import { MethodState } from './getInitStatus';

// Facts a method keeps to resume, fail or cancel exactly (init_method_state).
export async function recordMethodState(db: Queryable, nodeId: string, facts: Partial<Omit<MethodState, 'updated_at'>>): Promise<void> {
  await db.query('SELECT steep_repl.record_method_state($1, $2)', [nodeId, facts]);
}
