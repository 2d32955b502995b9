// The SQL calls node verify makes on the node's own database, typed
// (start_verify, verify_status, cancel_verify: migrations/functions). They
// come as JSON, so numbers are numbers.
import { Queryable, TableName } from '../lib/sql/queryable';

export interface VerifyStarted {
  verify_id: number;
  node_id: string;
  peer_node_id: string;
  tables: string[];
  job_id: number;
  follow: { status: string; channels: string[]; cancel: string };
}

export interface VerifyDifference {
  key: unknown;
  kind: 'missing' | 'extra' | 'different' | 'unsettled' | string;
}

export interface VerifyTable extends TableName {
  label?: string;
  status: 'pending' | 'hashing' | 'drilling' | 'rechecking' | 'equal' | 'differs' | 'unsettled';
  compared: 'key_ranges' | 'whole_table' | null;
  note: string | null;
  rows_estimate: number | null;
  ranges_total: number;
  ranges_done: number;
  ranges_differing: number;
  rows_compared: number;
  rows_missing: number;
  rows_extra: number;
  rows_different: number;
  rows_unsettled: number;
  sample_keys: unknown[];
  // up to 20 per table (verify_differences has up to the key limit)
  differences?: VerifyDifference[];
}

export interface VerifyStatus {
  verify_id: number;
  node_id: string;
  peer_node_id: string | null;
  reason: 'verify' | 'reinit';
  state: 'queued' | 'running' | 'equal' | 'differs' | 'unsettled' | 'failed' | 'cancelled';
  phase: string | null;
  percent: number;
  tables_total: number;
  tables_done: number;
  rows_compared: number;
  peer_lsn: string | null;
  error: string | null;
  hint: string | null;
  requested_at: string;
  started_at: string | null;
  finished_at: string | null;
  tables: VerifyTable[];
  [key: string]: unknown;
}

export interface VerifyOptions {
  tables?: string[];
  schema?: string;
  key_limit?: number;
}

export async function startVerify(db: Queryable, nodeId: string, peerId: string | null, options: VerifyOptions): Promise<VerifyStarted> {
  return (await db.query('SELECT steep_repl.start_verify($1, $2, $3) AS r', [nodeId, peerId, options])).rows[0].r;
}

export async function getVerifyStatus(db: Queryable, verifyId: number): Promise<VerifyStatus> {
  return (await db.query('SELECT steep_repl.verify_status($1) AS r', [verifyId])).rows[0].r;
}

export async function cancelVerify(db: Queryable, nodeId: string): Promise<unknown> {
  return (await db.query('SELECT steep_repl.cancel_verify($1) AS r', [nodeId])).rows[0].r;
}

