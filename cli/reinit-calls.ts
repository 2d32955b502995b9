// The SQL call node reinit (and the live view's R key) makes on the node's
// own database, typed: start_reinit (migrations/functions). The reinit is
// then the node's init_progress row (init_status), cancelled with cancel_init.
import { Queryable } from '../lib/sql/queryable';
import type { Scope } from './verify-scope';

export interface ReinitStarted {
  node_id: string;
  source_node_id?: string;
  state: string;
  job_id: number;
  tables?: string[];
  [key: string]: unknown;
}

export interface ReinitOptions {
  from?: string;
  timeout?: number | string;
}

export async function startReinit(db: Queryable, nodeId: string, scope: Scope, options: ReinitOptions = {}): Promise<ReinitStarted> {
  return (await db.query('SELECT steep_repl.start_reinit($1, $2, $3) AS r', [nodeId, scope, options])).rows[0].r;
}
