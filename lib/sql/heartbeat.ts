import { Queryable } from './queryable';

// The agent's heartbeat of its local node.
export async function heartbeat(db: Queryable): Promise<void> {
  await db.query('SELECT steep_repl.heartbeat()');
}
