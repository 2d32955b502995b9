import { Queryable } from './queryable';

// What a reinit re-copies: tables as names scope_tables reads ('s.t', 't',
// '"Odd Name"'), a schema, or every table (the node's own method).
export type ReinitScope = { tables: string[] } | { schema: string } | { full: true };

export interface ReinitOptions {
  // must be the node's source (init_source_node)
  from?: string;
  // seconds or an interval
  timeout?: number | string;
}

export interface ReinitStarted {
  node_id: string;
  source_node_id: string;
  scope: 'tables' | 'schema' | 'full';
  schema: string | null;
  // labels, as format('%I.%I') writes them; null for full
  tables: string[] | null;
  method: string | null;
  previous_state: string;
  state: 'reinitializing';
  job_id: number;
  follow: { status: string; channels: string[]; cancel: string };
}

// Runs on the node's own database (start_reinit refuses anywhere else). The
// reinit is then the node's init_progress row (init_status), cancelled with cancel_init.
export async function startReinit(db: Queryable, nodeId: string, scope: ReinitScope, options: ReinitOptions = {}): Promise<ReinitStarted> {
  return (await db.query('SELECT steep_repl.start_reinit($1, $2, $3) AS r', [nodeId, scope, options])).rows[0].r;
}
