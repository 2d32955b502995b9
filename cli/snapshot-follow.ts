// Follows one snapshot's generate on its source until it is no longer
// generating (followStatus: its progress and events are keyed on
// snapshot_id), and the lines it shows meanwhile.
import { Client, ClientConfig } from 'pg';
import { bytes, bytesPerSecond, eta, percent, shellWord } from '../lib/format';
import { getSnapshotStatus, SnapshotStatus } from '../lib/sql/snapshots';
import { followStatus, StatusFollower } from './follow-status';

export const snapshotSettled = (s: SnapshotStatus): boolean => s.state !== 'generating';

export function followSnapshot(
  config: ClientConfig,
  client: Client,
  snapshotId: string,
  options: { render(s: SnapshotStatus): void; pollMs?: number },
): StatusFollower<SnapshotStatus> {
  return followStatus(config, client, {
    read: (reader) => getSnapshotStatus(reader, snapshotId),
    ended: snapshotSettled,
    matches: (payload) => (payload as { snapshot_id?: unknown } | null)?.snapshot_id === snapshotId,
    ...options,
  });
}

// "2.9x": raw bytes per stored byte, the compression's gain.
export function ratio(raw: number | null | undefined, stored: number | null | undefined): string {
  const r = Number(raw ?? 0);
  const s = Number(stored ?? 0);
  return r > 0 && s > 0 ? `${(r / s).toFixed(1)}x` : '-';
}

// The raw bytes of the parts whose files are done (bytes_written counts the
// parts being written as well; bytes_stored only the done files).
const doneRaw = (s: SnapshotStatus): number =>
  Number(s.bytes_written ?? 0) - (s.state === 'generating' ? (s.active ?? []).reduce((sum, a) => sum + Number(a.bytes_written ?? 0), 0) : 0);

// "[########------]   40.2%  generating  3/8 parts  120MB written  41.0MB stored (2.9x)  48.1MB/s  2 workers  ETA 1m02s"
export function snapshotLine(s: SnapshotStatus, width = 24): string {
  const overall = Math.min(100, Math.max(0, Number(s.overall_percent ?? 0)));
  const filled = Math.floor((overall / 100) * width);
  const parts = [
    `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`,
    percent(overall, 1).padStart(6),
    s.state,
    `${s.parts_done ?? 0}/${s.parts_total ?? 0} parts`,
    `${bytes(s.bytes_written ?? 0)} written`,
    `${bytes(s.bytes_stored ?? 0)} stored (${ratio(doneRaw(s), s.bytes_stored)})`,
  ];
  if (s.state !== 'generating') return parts.join('  ');
  if (s.bytes_per_second != null) parts.push(bytesPerSecond(s.bytes_per_second));
  if (s.workers_active) parts.push(`${s.workers_active} workers`);
  if (s.eta_seconds != null) parts.push(eta(s.eta_seconds));
  return parts.join('  ');
}

// "  worker 2  public.big part 3/8   41.2%  12.0MB": one per part being written.
export function snapshotPartLines(s: SnapshotStatus): string[] {
  if (s.state !== 'generating') return [];
  return (s.active ?? []).map((a) =>
    [
      `  worker ${a.worker ?? '?'}`,
      `${a.leaf && a.leaf !== a.table ? `${a.table} (${a.leaf})` : a.table} part ${a.part_no}/${a.part_count}`,
      percent(a.percent, 1).padStart(6),
      bytes(a.bytes_written),
    ].join('  '),
  );
}

export const snapshotLines = (s: SnapshotStatus): string[] => [snapshotLine(s), ...snapshotPartLines(s)];

// What to run to remove a snapshot, from any database whose registry knows its source.
export const deleteCommand = (snapshotId: string, sourceId: string): string =>
  `steep-repl snapshot delete ${shellWord(snapshotId)} --node ${shellWord(sourceId)}`;
