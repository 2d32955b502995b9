import type { ReinitState } from './listNodes';
import type { RecoveryEnd } from './recoveryEnd';
import { LabelledTable, Queryable } from './queryable';

// steep_repl.init_status: the one shape of an init every client reads. It
// comes as JSON, so numbers are numbers.
export interface InitProgress {
  node_id: string;
  source_node_id: string | null;
  method: string;
  // the phases the method goes through, in order (init_methods.phases)
  phases: string[];
  phase: string;
  overall_percent: number;
  tables_total: number;
  tables_done: number;
  current_table: string | null;
  current_table_percent: number | null;
  rows_total: number | null;
  rows_copied: number;
  bytes_total: number | null;
  bytes_copied: number;
  rows_per_second: number | null;
  bytes_per_second: number | null;
  eta_seconds: number | null;
  workers_active: number;
  workers_max: number | null;
  lag_bytes: number | null;
  error: string | null;
  // the source's relations logical replication cannot carry, which the init went ahead without (auto, manual)
  not_replicated?: Array<LabelledTable & { reason: string }>;
  failure_kind: 'schema_mismatch' | 'timeout' | 'connection' | 'error' | null;
  job_id: number | null;
  options: InitOptions;
  cancel_requested_at: string | null;
  // a reinit (init_progress.reinit): its scope, tables and step; null for an init
  reinit?: ReinitState | null;
  started_at: string;
  updated_at: string;
  elapsed_seconds: number;
}

// init_progress.options: what the user asked for, completed with defaults
// (steep_repl.init_options); which keys exist depends on the method.
export interface InitOptions {
  schema_sync: 'strict' | 'auto' | 'manual';
  force?: boolean;
  timeout: number | null;
  lag_threshold_bytes: number;
  parallel?: number | null;
  [option: string]: unknown;
}

// steep_repl.init_method_state: what the method recorded to resume exactly.
export interface MethodState {
  replication_name: string;
  slot_name: string | null;
  subscription_oid: number | null;
  copy_data: boolean | null;
  reverse_of_pair: boolean | null;
  lsn_target: string | null;
  // how the subscription was made: origin none or any (a cascade); null where the server has no such option
  origin: 'none' | 'any' | null;
  // the source's prepared slot (init_slots) a reverse init subscribes through
  prepared_slot: string | null;
  // the publication and its tables on the source as the plan made them
  source_publication: SourcePublication | null;
  // max_sync_workers_per_subscription before --parallel changed it (NULL: unchanged),
  // and whether that value was itself set with ALTER SYSTEM
  sync_workers_before: number | null;
  sync_workers_before_altered: boolean | null;
  // direct: the exported snapshot the parts are read on (cleared once the
  // copy on it is over) and the slot's consistent point
  snapshot_name: string | null;
  consistent_lsn: string | null;
  // two-phase: the snapshot loaded, and pg_snapshot_xmax on the source right
  // after the pair's publication existed (xid8 as text): the stream switches
  // to that publication once every transaction below it has ended
  snapshot_id?: string | null;
  publication_xmax?: string | null;
  // manual: the DBA's backup, the prepared slot's expiry, when node complete
  // asked, the handover point used (H) and, for a base backup, the copy's
  // steep_repl.recovery_end() as complete read it
  backup?: 'pg_dump' | 'pg_basebackup' | null;
  expires_at?: string | null;
  complete_requested_at?: string | null;
  source_lsn?: string | null;
  recovery_end?: RecoveryEnd | null;
  updated_at: string;
}

export interface SourcePublication {
  oid: number;
  tables: Array<{ relid: number; schema_name: string; table_name: string }>;
}

export type TableState = 'pending' | 'copying' | 'copied' | 'done' | 'failed' | 'skipped';

export interface TableProgress extends LabelledTable {
  state: TableState;
  rows_total: number | null;
  rows_copied: number;
  bytes_total: number | null;
  bytes_copied: number;
  percent: number;
  // stored once the table is done; while it copies, the average since it started
  rows_per_second: number | null;
  started_at: string | null;
  completed_at: string | null;
  seconds: number | null;
  error: string | null;
}

export interface InitJob {
  job_id: number;
  locked_at: string | null;
  attempts: number;
  run_at: string;
  last_error: string | null;
}

// A part being copied now (init_parts, state copying), as init_status shows it.
export interface ActivePart {
  worker: number | null;
  // the planned table, and the relation read on the source (one of its leaves for a partitioned table)
  label: string;
  leaf: string;
  part_no: number;
  part_count: number;
  split: 'whole' | 'key' | 'ctid';
  rows_copied: number;
  bytes_copied: number;
  rows_estimate: number;
  // by rows against the estimate, held below 100 until the part is done; null without an estimate
  percent: number | null;
  rows_per_second: number | null;
}

// A method that copies in parts (direct): null for the others.
export interface PartsSummary {
  total: number;
  // done on the snapshot, or copied again by PostgreSQL's table sync (resynced)
  done: number;
  // handed to PostgreSQL's table sync after the snapshot was lost, not yet copied
  resync: number;
  // parts whose copy began more than once (a run cut off in the middle of them)
  copied_twice: number;
  active: ActivePart[];
}

export interface InitStatus {
  node_id: string;
  state: string;
  in_progress: boolean;
  source_node_id: string | null;
  started_at: string | null;
  completed_at: string | null;
  progress: InitProgress | null;
  method_state: MethodState | null;
  tables: TableProgress[];
  parts: PartsSummary | null;
  job: InitJob | null;
}

export async function getInitStatus(db: Queryable, nodeId: string): Promise<InitStatus> {
  return (await db.query('SELECT steep_repl.init_status($1) AS s', [nodeId])).rows[0].s;
}
