// TEMPORARY: the snapshot SQL calls as the team sheet describes them, until
// lib/sql/snapshots.ts (H1) lands; then the commands import those.
import { Queryable } from '../lib/sql/queryable';

export type SnapshotState = 'generating' | 'ready' | 'failed' | 'expired' | 'deleted';

export interface SnapshotActivePart {
  worker: number | null;
  table: string;
  leaf: string;
  part_no: number;
  part_count: number;
  percent: number | null;
  bytes_written: number;
}

export interface SnapshotStatus {
  snapshot_id: string;
  source_node_id: string;
  output_dir: string;
  state: SnapshotState;
  compression: string;
  parallel: number;
  split_tables_larger_than: number;
  max_parts: number;
  slot_name: string;
  publication: string;
  consistent_lsn: string | null;
  error: string | null;
  hint: string | null;
  job_id: number | null;
  created_at: string;
  finished_at: string | null;
  expires_at: string;
  tables_total: number;
  tables_done: number;
  parts_total: number;
  parts_done: number;
  rows_estimate: number | null;
  bytes_estimate: number | null;
  rows_written: number;
  bytes_written: number;
  bytes_stored: number;
  overall_percent: number;
  rows_per_second: number | null;
  bytes_per_second: number | null;
  eta_seconds: number | null;
  workers_active: number;
  active: SnapshotActivePart[];
  slot: { exists: boolean; active: boolean; wal_status: string | null; safe_wal_size: number | null; retained_bytes: number | null } | null;
  applies: Array<{ slot_name: string; for_node: string; created_at: string }>;
}

export interface SnapshotStarted {
  snapshot_id: string;
  state: SnapshotState;
  output_dir: string;
  expires_at: string;
  job_id: number;
  options: Record<string, unknown>;
  follow: { status: string; channels: string[] };
}

export interface SnapshotOverview {
  snapshot_id: string;
  source_node_id: string;
  state: SnapshotState;
  consistent_lsn: string | null;
  output_dir: string;
  compression: string;
  stored_bytes: number | string | null;
  raw_bytes: number | string | null;
  rows: number | string | null;
  parts: number | null;
  created_at: Date;
  expires_at: Date;
  retained_wal_bytes: number | string | null;
  wal_status: string | null;
  safe_wal_size: number | string | null;
  applies_in_flight: number;
  error: string | null;
}

export async function generateSnapshot(db: Queryable, outputDir: string, options: Record<string, unknown>): Promise<SnapshotStarted> {
  return (await db.query('SELECT steep_repl.generate_snapshot($1, $2) AS r', [outputDir, options])).rows[0].r;
}

export async function getSnapshotStatus(db: Queryable, snapshotId: string): Promise<SnapshotStatus> {
  return (await db.query('SELECT steep_repl.snapshot_status($1) AS s', [snapshotId])).rows[0].s;
}

export async function listSnapshots(db: Queryable, states?: SnapshotState[]): Promise<SnapshotOverview[]> {
  return (
    await db.query('SELECT * FROM steep_repl.snapshot_overview WHERE $1::text[] IS NULL OR state = ANY ($1) ORDER BY created_at DESC', [states ?? null])
  ).rows;
}

export async function deleteSnapshot(db: Queryable, snapshotId: string): Promise<Record<string, unknown>> {
  return (await db.query('SELECT steep_repl.delete_snapshot($1) AS r', [snapshotId])).rows[0].r;
}
