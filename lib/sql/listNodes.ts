import { Numeric, Queryable } from './queryable';
import { NodeRow } from './registerNode';

// A row of steep_repl.node_overview: the registry with health, the init and
// what the node's state allows.
export interface NodeOverview extends Omit<NodeRow, 'registered_at'> {
  health: string;
  init_in_progress: boolean;
  phase: string | null;
  overall_percent: Numeric;
  tables_done: number | null;
  tables_total: number | null;
  rows_per_second: Numeric;
  eta_seconds: number | null;
  lag_bytes: Numeric;
  error: string | null;
  method: string | null;
  seconds_since_seen: number | null;
  can_start: boolean;
  start_states: string;
  can_cancel: boolean;
  // local row only: slots this database holds for a later init (init_slots),
  // the WAL they retain and the first expiry; null on a peer's row
  prepared_slots: number | null;
  prepared_retained_bytes: Numeric;
  prepared_next_expiry: Date | null;
}

// In `node list` order: priority, then id.
export async function listNodes(db: Queryable): Promise<NodeOverview[]> {
  return (await db.query('SELECT * FROM steep_repl.node_overview ORDER BY priority DESC, node_id')).rows;
}

// One node, or undefined when the registry does not know it.
export async function getNodeOverview(db: Queryable, nodeId: string): Promise<NodeOverview | undefined> {
  return (await db.query('SELECT * FROM steep_repl.node_overview WHERE node_id = $1', [nodeId])).rows[0];
}
