import { TableName, Queryable } from './queryable';

export type VerifyState = 'queued' | 'running' | 'equal' | 'differs' | 'unsettled' | 'failed' | 'cancelled';
export type VerifyTableStatus = 'pending' | 'hashing' | 'drilling' | 'rechecking' | 'equal' | 'differs' | 'unsettled';
export type DifferenceKindName = 'missing' | 'extra' | 'different' | 'unsettled';

export interface VerifyDifference {
  // the key as {column: value}; for a table without a key, the whole row
  key: Record<string, unknown>;
  kind: DifferenceKindName;
}

// What a table's comparison counted (the agent records them: recordVerifyTable).
export interface VerifyTableCounts {
  ranges_total: number;
  ranges_done: number;
  ranges_differing: number;
  rows_compared: number;
  rows_missing: number;
  rows_extra: number;
  rows_different: number;
  rows_unsettled: number;
}

export interface VerifyTableStatusRow extends TableName, VerifyTableCounts {
  label: string;
  status: VerifyTableStatus;
  compared: 'key_ranges' | 'whole_table' | null;
  note: string | null;
  rows_estimate: number | null;
  sample_keys: Array<Record<string, unknown>>;
  // up to 20 (all of them, up to the key limit, are in verify_differences)
  differences: VerifyDifference[];
  started_at: string | null;
  finished_at: string | null;
  seconds: number | null;
}

// steep_repl.verify_status: JSON, so numbers are numbers.
export interface VerifyStatus {
  verify_id: number;
  node_id: string;
  peer_node_id: string | null;
  reason: 'verify' | 'reinit';
  scope: { tables?: string[]; schema?: string };
  options: { key_limit: number };
  state: VerifyState;
  phase: 'planning' | 'hashing' | 'drilling' | 'rechecking' | 'done' | null;
  percent: number;
  tables_total: number;
  tables_done: number;
  tables_differing: number;
  tables_unsettled: number;
  rows_compared: number;
  peer_lsn: string | null;
  error: string | null;
  hint: string | null;
  job_id: number | null;
  job: { job_id: number; locked_at: string | null; attempts: number; max_attempts: number; last_error: string | null } | null;
  node_state: string;
  cancel_requested_at: string | null;
  requested_at: string;
  started_at: string | null;
  finished_at: string | null;
  seconds: number;
  tables: VerifyTableStatusRow[];
}

export async function getVerifyStatus(db: Queryable, verifyId: number): Promise<VerifyStatus> {
  return (await db.query('SELECT steep_repl.verify_status($1) AS r', [verifyId])).rows[0].r;
}
