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
  // Replication health (0.9.0 and later): why the node is not healthy (null
  // when it is); on the local row, its watched subscriptions and slots
  // (kind, then name; [] elsewhere), the largest lag over its subscriptions
  // (null when none is measured) and when the agent's watch last completed a
  // round (nodes.replication_observed_at; null on a peer's row and before
  // the first round).
  health_reason?: string | null;
  replication?: ReplicationHealthRow[];
  replication_lag_bytes?: Numeric;
  replication_lag_seconds?: Numeric;
  replication_observed_at?: Date | null;
}

// A row of steep_repl.replication_health as JSON (node_overview.replication,
// observe_replication): numbers are numbers, LSNs and times strings.
// Subscription facts are null on a slot's row and the other way round.
export interface ReplicationHealthRow {
  kind: 'subscription' | 'slot';
  name: string;
  node_id: string;
  // the source node of a subscription, the node a slot feeds
  peer_node_id: string | null;
  status: 'healthy' | 'degraded';
  // codes, in a fixed order: disabled, apply_errors, sync_errors, conflicts,
  // worker_missing, source_unreachable, source_slot_missing, lag_bytes,
  // lag_seconds; slot_lost, slot_unreserved, slot_safe_wal, slot_retained,
  // slot_inactive
  problems: string[];
  // every problem's phrase, joined by '; '; null when healthy
  reason: string | null;
  degraded_since: string | null;
  first_observed_at: string;
  observed_at: string;
  // subscription
  // an oid: JSON gives it as text
  subscription_oid: string | null;
  enabled: boolean | null;
  // the leader apply worker; when one was last seen; since when an enabled subscription has none
  worker_pid: number | null;
  worker_seen_at: string | null;
  worker_missing_since: string | null;
  apply_error_count: number | null;
  sync_error_count: number | null;
  apply_errors_changed_at: string | null;
  sync_errors_changed_at: string | null;
  // source_confirmed_lsn when the apply error count last rose
  apply_errors_lsn: string | null;
  // tables of the subscription whose sync has not finished
  tables_syncing: number | null;
  // conflict type (confl_ dropped) -> count; PostgreSQL 18 and later, null before
  conflicts: Record<string, number> | null;
  // rises within health_settings.error_window_seconds
  apply_errors_recent: number | null;
  sync_errors_recent: number | null;
  conflicts_recent: Record<string, number> | null;
  received_lsn: string | null;
  latest_end_lsn: string | null;
  last_msg_receipt_time: string | null;
  slot_name: string | null;
  // the source's facts, as the agent read them there
  source_lsn: string | null;
  source_confirmed_lsn: string | null;
  source_slot_active: boolean | null;
  // false: the source was reached and has no slot of that name
  source_slot_exists: boolean | null;
  source_error: string | null;
  // since when the source could not be asked
  source_error_since: string | null;
  lag_bytes: number | null;
  lag_seconds: number | null;
  // lag_seconds is a lower bound (the oldest sample was already past the confirmed position)
  lag_seconds_at_least: boolean | null;
  lag_trend: 'growing' | 'shrinking' | 'steady' | null;
  // slot
  slot_active: boolean | null;
  active_pid: number | null;
  wal_status: string | null;
  safe_wal_size: number | null;
  retained_bytes: number | null;
  restart_lsn: string | null;
  confirmed_flush_lsn: string | null;
  prepared: boolean | null;
  inactive_seen_since: string | null;
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
