// Two-phase snapshots on their source (steep_repl.snapshots and its
// functions): the typed calls the generate, the apply and the front ends
// share. snapshot_status and the payloads come as JSON, so numbers are
// numbers there; snapshot_overview's bigint columns are read as float8.
import type { Compression } from '../snapshot/manifest';
import { Queryable, TableName } from './queryable';
import type { Part, Split } from './initParts';

export type SnapshotState = 'generating' | 'ready' | 'failed' | 'expired' | 'deleted';

// generate_snapshot's options once checked and completed (snapshot_options).
export interface SnapshotOptions {
  parallel: number;
  compression: Compression;
  split_tables_larger_than: number;
  max_parts: number;
  // seconds
  expires: number;
}

// What generate_snapshot returns.
export interface GeneratedSnapshot {
  snapshot_id: string;
  source_node_id: string;
  state: SnapshotState;
  output_dir: string;
  slot_name: string;
  publication: string;
  expires_at: string;
  job_id: number;
  options: SnapshotOptions;
  follow: { status: string; channels: string[]; delete: string };
}

// A part being written now, one per worker.
export interface ActiveSnapshotPart {
  worker: number | null;
  // the planned table and the relation read (a leaf partition of a partitioned table), as quote_ident writes them
  table: string;
  leaf: string;
  part_no: number;
  part_count: number;
  split: Split;
  file_name: string;
  rows_written: number;
  rows_estimate: number;
  bytes_written: number;
  // by rows against the estimate, held below 100; null without an estimate
  percent: number | null;
  rows_per_second: number | null;
  // the attempts at this part (more than 1: a run was cut off in it)
  writes: number;
}

export interface SnapshotSlot {
  exists: boolean;
  active: boolean;
  // pg_replication_slots.wal_status: reserved, extended, unreserved, lost
  wal_status: string | null;
  safe_wal_size: number | null;
  // WAL the server keeps for the slot (from its restart_lsn)
  retained_bytes: number | null;
}

// An apply streaming through the snapshot's publication (an init_slots row of purpose two-phase).
export interface SnapshotApply {
  slot_name: string;
  for_node: string;
  created_at: string;
  expires_at: string;
}

// steep_repl.snapshot_status: the one shape clients read.
export interface SnapshotStatus {
  snapshot_id: string;
  source_node_id: string;
  output_dir: string;
  state: SnapshotState;
  compression: Compression;
  parallel: number;
  split_tables_larger_than: number;
  max_parts: number;
  slot_name: string;
  publication: string;
  consistent_lsn: string | null;
  // the exported snapshot while the parts are written; null once written (or failed)
  snapshot_name: string | null;
  manifest_checksum: string | null;
  rows_per_second: number | null;
  bytes_per_second: number | null;
  eta_seconds: number | null;
  workers_active: number;
  error: string | null;
  hint: string | null;
  wal_warned_at: string | null;
  job_id: number | null;
  created_at: string;
  finished_at: string | null;
  expires_at: string;
  updated_at: string;
  // the tables, as quote_ident writes them (once planned)
  tables: string[];
  tables_total: number;
  tables_done: number;
  parts_total: number;
  parts_done: number;
  rows_estimate: number;
  bytes_estimate: number;
  // of the COPY streams: done parts plus what the parts being written streamed so far
  rows_written: number;
  bytes_written: number;
  // the done files' size on disk
  bytes_stored: number;
  // weighted by the parts' estimated bytes; 100 only once ready
  overall_percent: number;
  elapsed_seconds: number;
  active: ActiveSnapshotPart[];
  slot: SnapshotSlot;
  applies: SnapshotApply[];
  // the generate's job while queued or running
  job: { job_id: number; locked_at: string | null; attempts: number; run_at: string; last_error: string | null } | null;
}

// A row of steep_repl.snapshot_overview.
export interface SnapshotOverview {
  snapshot_id: string;
  source_node_id: string;
  state: SnapshotState;
  consistent_lsn: string | null;
  output_dir: string;
  compression: Compression;
  stored_bytes: number;
  raw_bytes: number;
  rows: number;
  parts: number;
  parts_done: number;
  tables: number;
  overall_percent: number;
  created_at: Date;
  finished_at: Date | null;
  expires_at: Date;
  retained_wal_bytes: number | null;
  wal_status: string | null;
  safe_wal_size: number | null;
  slot_exists: boolean;
  applies_in_flight: number;
  slot_name: string;
  publication: string;
  parallel: number;
  error: string | null;
  hint: string | null;
}

// Payload of steep_repl_progress for a snapshot (steep_repl.announce_snapshot_progress):
// the row without its tables list, with the totals; no node_id key.
export type SnapshotProgressNotification = Omit<SnapshotStatus, 'tables' | 'elapsed_seconds' | 'active' | 'slot' | 'applies' | 'job'> & {
  kind: 'snapshot';
  // only when error, hint or output_dir were cut to fit NOTIFY's 8000 bytes
  truncated?: true;
};

export function isSnapshotProgress(payload: unknown): payload is SnapshotProgressNotification {
  return typeof payload === 'object' && payload !== null && (payload as { kind?: unknown }).kind === 'snapshot';
}

// What delete_snapshot returns.
export interface DeletedSnapshot {
  snapshot_id: string;
  state: 'deleted';
  was: SnapshotState;
  output_dir: string;
  remove_files_job_id: number;
  publication: string;
  slot_dropped: boolean;
  publication_dropped: boolean;
  // kept because applies stream through it (then note says so)
  publication_kept: boolean;
  applies_in_flight: Array<{ slot_name: string; for_node: string }>;
  note: string | null;
}

export type ExpireOutcome = 'gone' | 'inactive' | 'rescheduled' | 'expired';

export async function generateSnapshot(db: Queryable, outputDir: string, options: Partial<Record<keyof SnapshotOptions, unknown>> = {}): Promise<GeneratedSnapshot> {
  return (await db.query('SELECT steep_repl.generate_snapshot($1, $2) AS s', [outputDir, JSON.stringify(options)])).rows[0].s;
}

export async function getSnapshotStatus(db: Queryable, snapshotId: string): Promise<SnapshotStatus> {
  return (await db.query('SELECT steep_repl.snapshot_status($1) AS s', [snapshotId])).rows[0].s;
}

export async function listSnapshots(db: Queryable): Promise<SnapshotOverview[]> {
  const { rows } = await db.query(
    `SELECT snapshot_id, source_node_id, state, consistent_lsn::text, output_dir, compression, stored_bytes::float8 AS stored_bytes,
            raw_bytes::float8 AS raw_bytes, rows::float8 AS rows, parts, parts_done, tables, overall_percent::float8 AS overall_percent,
            created_at, finished_at, expires_at, retained_wal_bytes::float8 AS retained_wal_bytes, wal_status,
            safe_wal_size::float8 AS safe_wal_size, slot_exists, applies_in_flight, slot_name, publication, parallel, error, hint
     FROM steep_repl.snapshot_overview ORDER BY created_at, snapshot_id`,
  );
  return rows;
}

export async function deleteSnapshot(db: Queryable, snapshotId: string): Promise<DeletedSnapshot> {
  return (await db.query('SELECT steep_repl.delete_snapshot($1) AS s', [snapshotId])).rows[0].s;
}

export async function expireSnapshot(db: Queryable, snapshotId: string): Promise<ExpireOutcome> {
  return (await db.query('SELECT steep_repl.expire_snapshot($1) AS outcome', [snapshotId])).rows[0].outcome;
}

// A part of a snapshot as planned (snapshot_parts), ranges as decimal text.
export interface SnapshotPart extends Omit<Part, 'state' | 'copies'> {
  file_name: string;
  state?: 'pending' | 'writing' | 'done';
  writes?: number;
  rows?: number | null;
  raw_bytes?: number | null;
  stored_bytes?: number | null;
  sha256?: string | null;
}

export async function listSnapshotParts(db: Queryable, snapshotId: string): Promise<SnapshotPart[]> {
  const { rows } = await db.query(
    `SELECT schema_name, table_name, leaf_schema, leaf_name, part_no, part_count, split, key_column,
            range_start::text AS range_start, range_end::text AS range_end, bytes_estimate::float8 AS bytes_estimate,
            rows_estimate::float8 AS rows_estimate, file_name, state, writes, rows::float8 AS rows, raw_bytes::float8 AS raw_bytes,
            stored_bytes::float8 AS stored_bytes, sha256
     FROM steep_repl.snapshot_parts WHERE snapshot_id = $1 ORDER BY schema_name, table_name, leaf_schema, leaf_name, part_no`,
    [snapshotId],
  );
  return rows;
}

// The generate's own calls (agent/snapshot).
export async function planSnapshotParts(db: Queryable, snapshotId: string, tables: TableName[], parts: SnapshotPart[]): Promise<number> {
  const { rows } = await db.query('SELECT steep_repl.plan_snapshot_parts($1, $2, $3) AS n', [
    snapshotId,
    JSON.stringify(tables.map(({ schema_name, table_name }) => ({ schema_name, table_name }))),
    JSON.stringify(parts),
  ]);
  return rows[0].n;
}

export async function recordSnapshotExport(db: Queryable, snapshotId: string, consistentLsn: string, snapshotName: string): Promise<void> {
  await db.query('SELECT steep_repl.record_snapshot_export($1, $2, $3)', [snapshotId, consistentLsn, snapshotName]);
}

// A worker takes the part; its number of writes, or none when it is no longer to do.
export async function startSnapshotPart(db: Queryable, snapshotId: string, part: SnapshotPart, worker: number): Promise<{ writes: number } | undefined> {
  const { rows } = await db.query('SELECT writes FROM steep_repl.start_snapshot_part($1, $2, $3, $4, $5)', [
    snapshotId,
    part.leaf_schema,
    part.leaf_name,
    part.part_no,
    worker,
  ]);
  return rows[0]?.writes == null ? undefined : rows[0];
}

export interface WrittenPart {
  rows: number;
  raw_bytes: number;
  stored_bytes: number;
  sha256: string;
}

export async function finishSnapshotPart(db: Queryable, snapshotId: string, part: SnapshotPart, written: WrittenPart): Promise<void> {
  await db.query('SELECT steep_repl.finish_snapshot_part($1, $2, $3, $4, $5, $6, $7, $8)', [
    snapshotId,
    part.leaf_schema,
    part.leaf_name,
    part.part_no,
    written.rows,
    written.raw_bytes,
    written.stored_bytes,
    written.sha256,
  ]);
}

export interface SnapshotPartReport {
  leaf_schema: string;
  leaf_name: string;
  part_no: number;
  rows_written: number;
  bytes_written: number;
}

export interface SnapshotStats {
  rows_per_second?: number;
  bytes_per_second?: number;
  eta_seconds?: number | null;
  workers_active?: number;
}

// Returns the row's state: a generate whose snapshot is no longer generating stops.
export async function reportSnapshotParts(db: Queryable, snapshotId: string, parts: SnapshotPartReport[], stats: SnapshotStats = {}): Promise<{ state: SnapshotState }> {
  const { rows } = await db.query('SELECT state FROM steep_repl.report_snapshot_parts($1, $2, $3)', [snapshotId, JSON.stringify(parts), JSON.stringify(stats)]);
  return rows[0];
}

export async function finishSnapshot(
  db: Queryable,
  snapshotId: string,
  outcome: { ready: { manifest_checksum: string } } | { failed: { error: string; hint?: string; [detail: string]: unknown } },
): Promise<{ state: SnapshotState }> {
  const [name, details] = 'ready' in outcome ? ['ready', outcome.ready] : ['failed', outcome.failed];
  const { rows } = await db.query('SELECT state FROM steep_repl.finish_snapshot($1, $2, $3)', [snapshotId, name, JSON.stringify(details)]);
  return rows[0];
}

export interface WatchResult {
  // snapshots still generating or ready: the watch runs again while there are any
  live: number;
  at_risk: Array<{ snapshot_id: string; state: SnapshotState; slot_name: string; reason: string; retained_bytes: number | null; threshold_bytes: number; wal_status: string | null; safe_wal_size: number | null; warned: boolean }>;
  failed: Array<{ snapshot_id: string; reason: string }>;
}

export async function watchSnapshotSlots(db: Queryable, warnBytes: number): Promise<WatchResult> {
  return (await db.query('SELECT steep_repl.watch_snapshot_slots($1) AS w', [warnBytes])).rows[0].w;
}
