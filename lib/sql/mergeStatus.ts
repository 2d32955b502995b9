import { LabelledTable, Queryable } from './queryable';

export type MergeMode = 'analyze' | 'dry_run' | 'record' | 'merge';
export type MergeStrategy = 'prefer-a' | 'prefer-b' | 'last-modified' | 'manual';
export type MergeState = 'queued' | 'running' | 'analyzed' | 'resolving' | 'merged' | 'differs' | 'failed' | 'cancelled';
export type MergePhase = 'preparing' | 'comparing' | 'exchanging' | 'catching_up' | 'verifying' | 'done';
// where a merge is, for a resumed job (merge_runs.step, init_progress.merge.step)
export type MergeStep = 'queued' | 'prepared' | 'comparing' | 'compared' | 'exchanged' | 'subscribed' | 'verifying' | 'verified' | (string & {});
// steps at or past the exchange's COMMIT, the point of no return (merge_runs.step, init_progress.merge.step)
export const stepsPastExchange: readonly MergeStep[] = ['exchanged', 'subscribed', 'verifying', 'verified'];
export type MergeFailureKind = 'refused' | 'schema' | 'concurrent' | 'quiesce' | 'timeout' | 'connection' | 'error';
export type MergeTableStatus = 'pending' | 'comparing' | 'compared' | 'exchanged' | 'equal' | 'differs' | 'unsettled' | 'failed';
export type MergeConflictKind = 'conflict' | 'concurrent' | 'unique';
export type MergeResolution = 'a' | 'b' | 'row';

// merge_runs.options as start_merge stores them.
export interface MergeOptions {
  // last-modified only
  column?: string;
  tables?: string[];
  schema?: string;
  quiesce: boolean;
  // seconds
  timeout: number;
  // manual --apply: the record run whose resolutions it applies
  resolutions_of?: number;
}

// A run's (or a table's) rows by kind and the rows its exchange wrote.
export interface MergeTotals {
  rows_identical: number;
  rows_only_a: number;
  rows_only_b: number;
  rows_conflicting: number;
  rows_to_a: number;
  rows_to_b: number;
}

// One row of merge_runs (JSON: numbers are numbers, times and LSNs strings).
export interface MergeRun extends MergeTotals {
  merge_id: number;
  node_a: string;
  node_b: string;
  mode: MergeMode;
  strategy: MergeStrategy | null;
  options: MergeOptions;
  // what was asked: {tables} or {schema}, {} for every replicated table
  scope: { tables?: string[]; schema?: string };
  state: MergeState;
  phase: MergePhase | null;
  step: MergeStep;
  percent: number;
  tables_total: number;
  tables_done: number;
  lsn_a: string | null;
  lsn_b: string | null;
  error: string | null;
  hint: string | null;
  failure_kind: MergeFailureKind | null;
  job_id: number | null;
  cancel_requested_at: string | null;
  requested_at: string;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
}

// merge_tables.sample_keys: the first keys of each kind ({column: value}).
export interface MergeSampleKeys {
  only_a?: Array<Record<string, unknown>>;
  only_b?: Array<Record<string, unknown>>;
  conflicting?: Array<Record<string, unknown>>;
}

// merge_tables.verify: what the final verify found.
export interface MergeTableVerify {
  status: 'equal' | 'differs' | 'unsettled';
  rows_missing: number;
  rows_extra: number;
  rows_different: number;
  rows_unsettled: number;
}

// What a table's comparison and exchange counted (recordMergeTable writes them).
export interface MergeTableCounts {
  rows_a: number | null;
  rows_b: number | null;
  rows_identical: number;
  rows_only_a: number;
  rows_only_b: number;
  rows_conflicting: number;
  conflicts_won_a: number;
  conflicts_won_b: number;
  rows_to_a: number;
  rows_to_b: number;
  rows_changed_during: number;
}

export interface MergeTable extends LabelledTable, MergeTableCounts {
  status: MergeTableStatus;
  sample_keys: MergeSampleKeys;
  verify: MergeTableVerify | null;
  note: string | null;
  started_at: string | null;
  finished_at: string | null;
}

export interface MergeConflictCounts {
  total: number;
  unresolved: number;
  // {conflict: n, concurrent: n, unique: n}, kinds without rows left out
  by_kind: Partial<Record<MergeConflictKind, number>>;
}

// steep_repl.merge_status: the run, its job, its tables and its conflicts.
export interface MergeStatus extends MergeRun {
  node_a_state: string | null;
  node_b_state: string | null;
  seconds: number;
  job: { job_id: number; locked_at: string | null; attempts: number; max_attempts: number; last_error: string | null } | null;
  tables: MergeTable[];
  conflicts: MergeConflictCounts;
}

// init_progress.merge: a merge in progress on a node (or how it ended, while the row stays).
export interface MergeNodeState {
  merge_id: number;
  // node A, whose database holds the run
  coordinator: string;
  peer_node_id: string;
  role: 'a' | 'b';
  strategy: MergeStrategy | null;
  tables_total: number;
  step: MergeStep;
  error?: string | null;
  outcome?: MergeNodeOutcome;
  finished_at?: string;
}

export type MergeNodeOutcome = 'synchronized' | 'diverged' | 'failed' | 'cancelled' | 'unchanged';

// Payload of steep_repl_progress for a merge run (announce_merge_progress, on
// A's database). lib/notifications.ts has the other kinds.
export interface MergeProgressNotification {
  kind: 'merge';
  merge_id: number;
  node_a: string;
  node_b: string;
  mode: MergeMode;
  strategy: MergeStrategy | null;
  state: MergeState;
  phase: MergePhase | null;
  step: MergeStep;
  percent: number;
  tables_done: number;
  tables_total: number;
  rows_only_a: number;
  rows_only_b: number;
  rows_conflicting: number;
  rows_to_a: number;
  rows_to_b: number;
  error: string | null;
}

// Runs on node A's database (the run lives there).
export async function mergeStatus(db: Queryable, mergeId: number): Promise<MergeStatus> {
  return (await db.query('SELECT steep_repl.merge_status($1) AS r', [mergeId])).rows[0].r;
}
