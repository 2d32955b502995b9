// Follows one snapshot's generate on its source until it is no longer
// generating: the agent's progress and events arrive by NOTIFY (keyed on
// snapshot_id), and the whole status is re-read on each, after every
// (re)connect (notifications sent meanwhile are lost) and every few
// seconds (an agent that died sends none).
import { Client, ClientConfig } from 'pg';
import { bytes, bytesPerSecond, eta, percent, shellWord } from '../lib/format';
import { channels, listen } from '../lib/notifications';
import { getSnapshotStatus, SnapshotStatus } from '../lib/sql/snapshots';
import { oneReadAtATime } from './one-read-at-a-time';

export const snapshotSettled = (s: SnapshotStatus): boolean => s.state !== 'generating';

export function followSnapshot(
  config: ClientConfig,
  client: Client,
  snapshotId: string,
  options: { render(s: SnapshotStatus): void; pollMs?: number },
): { done: Promise<SnapshotStatus>; stop(): Promise<void> } {
  let finish!: (s: SnapshotStatus) => void;
  let fail!: (err: Error) => void;
  const done = new Promise<SnapshotStatus>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  let finished = false;
  let stopped = false;
  const update = (next: SnapshotStatus) => {
    if (finished || stopped) return;
    options.render(next);
    if (snapshotSettled(next)) {
      finished = true;
      finish(next);
    }
  };
  // A server restart ends the caller's session with the listener's: after
  // the link drops, a read that fails runs again on a session of its own.
  let reader = client;
  let ownReader: Client | undefined;
  let linkDropped = false;
  const newReader = async (): Promise<Client> => {
    await ownReader?.end().catch(() => undefined);
    ownReader = new Client(config);
    ownReader.on('error', () => undefined);
    await ownReader.connect();
    return (reader = ownReader);
  };
  const readOnce = () =>
    getSnapshotStatus(reader, snapshotId)
      .catch(async (err) => {
        if (!linkDropped) throw err;
        return getSnapshotStatus(await newReader(), snapshotId);
      })
      .then(update, (err) => {
        // a link still down: the next connect or tick reads again
        if (!stopped && !linkDropped) fail(err);
      });
  const reread = oneReadAtATime(readOnce, () => stopped);
  const listener = listen(config, [channels.progress, channels.events], {
    onConnected: () => {
      linkDropped = false;
      reread();
    },
    onDisconnected: () => {
      linkDropped = true;
    },
    onNotification: (_channel, payload) => {
      if ((payload as { snapshot_id?: unknown } | null)?.snapshot_id === snapshotId) reread();
    },
  });
  const ticker = setInterval(reread, options.pollMs ?? 3000);
  return {
    done,
    stop: async () => {
      stopped = true;
      clearInterval(ticker);
      await listener.close();
      await reread.current()?.catch(() => undefined);
      await ownReader?.end().catch(() => undefined);
    },
  };
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
