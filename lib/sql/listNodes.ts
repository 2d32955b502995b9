import { LabelledTable, Numeric, Queryable, TableName } from './queryable';
import type { VerifyState } from './getVerifyStatus';
import type { MergeNodeState, MergeRun, MergeTotals } from './mergeStatus';
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
  // What a verify found that persists (node_divergence in the node's own
  // database); a node older than 0.7.0 has none of these columns.
  diverged_tables?: number;
  divergence?: DivergedTable[];
  // the node's newest verify: running, or how the last one ended
  last_verify?: VerifySummary | null;
  verify_running?: boolean;
  // a reinit in progress (init_progress.reinit); null for an init
  reinit?: ReinitState | null;
  can_verify?: boolean;
  can_reinit?: boolean;
  // a merge in progress on this node (init_progress.merge); null otherwise
  merge?: MergeNodeState | null;
  // the node's newest merge run (as A or B), on the coordinator's (A's)
  // database only: null elsewhere and on a node older than 0.8.0
  last_merge?: MergeSummary | null;
}

// A table a verify found different, as node_overview lists it (JSON: numbers are numbers).
export interface DivergedTable extends LabelledTable {
  peer_node_id: string | null;
  verify_id: number | null;
  rows_missing: number;
  rows_extra: number;
  rows_different: number;
  found_at: string;
}

// node_overview's last_verify: the node's newest verify, as node list and the live view show it.
export interface VerifySummary {
  verify_id: number;
  peer_node_id: string | null;
  reason: 'verify' | 'reinit';
  state: VerifyState;
  phase: string | null;
  percent: number;
  tables_total: number;
  tables_done: number;
  tables_differing: number;
  current_table: string | null;
  rows_compared: number;
  error: string | null;
  requested_at: string;
  started_at: string | null;
  finished_at: string | null;
}

// init_progress.reinit: what a reinit re-copies and how far it got.
export interface ReinitState {
  scope: 'tables' | 'schema' | 'full';
  tables?: TableName[];
  schema?: string;
  previous_state?: string;
  step?: string;
  verify_id?: number | null;
  // once ended (finish_reinit): unchanged, recopied, or how its verify ended
  outcome?: 'unchanged' | 'recopied' | 'equal' | 'differs' | 'unsettled' | 'failed' | 'cancelled';
  finished_at?: string;
  [key: string]: unknown;
}

// node_overview's last_merge: the newest merge run the node took part in.
export interface MergeSummary
  extends Pick<
    MergeRun,
    | 'merge_id' | 'node_a' | 'node_b' | 'mode' | 'strategy' | 'state' | 'phase' | 'step' | 'percent' | 'tables_total' | 'tables_done'
    | keyof MergeTotals | 'error' | 'hint' | 'failure_kind' | 'requested_at' | 'started_at' | 'finished_at'
  > {
  // the other node of the run
  peer_node_id: string;
  // recorded conflicts without a resolution (a manual record run)
  conflicts_unresolved: number;
}

// The merge a node is in now: its progress row is a merge's and in
// progress (the merge column stays once the merge has ended). peer_node_id
// falls back to the node's source, which merge_node_begin sets to the peer.
export function mergeUnderWay(
  n: Pick<NodeOverview, 'init_in_progress' | 'method' | 'merge' | 'init_source_node'> | undefined,
): (MergeNodeState & { peer_node_id: string }) | undefined {
  if (!n?.init_in_progress || n.method !== 'merge' || !n.merge) return undefined;
  return { ...n.merge, peer_node_id: n.merge.peer_node_id ?? n.init_source_node ?? '?' };
}

// In `node list` order: priority, then id.
export async function listNodes(db: Queryable): Promise<NodeOverview[]> {
  return (await db.query('SELECT * FROM steep_repl.node_overview ORDER BY priority DESC, node_id')).rows;
}

// One node, or undefined when the registry does not know it.
export async function getNodeOverview(db: Queryable, nodeId: string): Promise<NodeOverview | undefined> {
  return (await db.query('SELECT * FROM steep_repl.node_overview WHERE node_id = $1', [nodeId])).rows[0];
}
