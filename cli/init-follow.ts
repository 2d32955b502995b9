// Follows one node's initialization until it settles: state changes and
// progress arrive by NOTIFY; the whole status is re-read after every
// (re)connect because notifications sent meanwhile are lost.
import { Client, ClientConfig } from 'pg';
import { ExitCode, ExitCodeValue } from '../lib/errors';
import { channels, listen, ProgressNotification, StateNotification } from '../lib/notifications';
import { bytes, count } from '../lib/format';
import { duration } from './render';

export interface InitStatus {
  node_id: string;
  state: string;
  in_progress: boolean;
  source_node_id: string | null;
  progress: (ProgressNotification & Record<string, unknown>) | null;
  tables: Array<Record<string, unknown> & { schema_name: string; table_name: string }>;
}

export interface FollowOptions {
  // Renders the node's progress; called on every update.
  render(status: InitStatus): void;
  // Settles when the node leaves its in-progress states (or is uninitialized
  // after a cancel).
  settled?(status: InitStatus): boolean;
}

export async function readInitStatus(client: Client, nodeId: string): Promise<InitStatus> {
  return (await client.query('SELECT steep_repl.init_status($1) AS s', [nodeId])).rows[0].s;
}

export const initSettled = (s: InitStatus): boolean => !s.in_progress && s.state !== 'preparing';

export function followInit(config: ClientConfig, client: Client, nodeId: string, options: FollowOptions): { done: Promise<InitStatus>; stop(): Promise<void> } {
  let status: InitStatus | undefined;
  let finish!: (s: InitStatus) => void;
  let fail!: (err: Error) => void;
  const done = new Promise<InitStatus>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const settled = options.settled ?? initSettled;
  const update = (next: InitStatus) => {
    status = next;
    options.render(next);
    if (settled(next)) finish(next);
  };
  // A server restart ends the caller's session with the listener's: after
  // the link drops, a re-read that fails runs again on one new session.
  let reader = client;
  let ownReader: Client | undefined;
  let replacement: Promise<Client> | undefined;
  let linkDropped = false;
  let stopped = false;
  const newReader = async (): Promise<Client> => {
    await ownReader?.end().catch(() => undefined);
    ownReader = new Client(config);
    ownReader.on('error', () => undefined);
    await ownReader.connect();
    if (stopped) await ownReader.end();
    return (reader = ownReader);
  };
  const reread = () =>
    readInitStatus(reader, nodeId)
      .catch(async (err) => {
        if (!linkDropped) throw err;
        replacement ??= newReader();
        return readInitStatus(await replacement, nodeId);
      })
      .then(update, (err) => stopped || fail(err));
  const listener = listen(config, [channels.state, channels.progress], {
    onConnected: () => void reread(),
    onDisconnected: () => {
      linkDropped = true;
      replacement = undefined;
    },
    onNotification: (channel, payload) => {
      if ((payload as { node_id?: string }).node_id !== nodeId || !status) return;
      if (channel === channels.progress) {
        update({ ...status, progress: { ...(status.progress ?? {}), ...(payload as ProgressNotification) } });
      } else {
        const change = payload as StateNotification;
        status = { ...status, state: change.to };
        void reread();
      }
    },
  });
  return {
    done,
    stop: async () => {
      stopped = true;
      await listener.close();
      await ownReader?.end().catch(() => undefined);
    },
  };
}

// "[########------------]  40.2%  copying  3/8 tables  public.big 57%  12.3k rows/s  48.1 MB/s  ETA 1m02s"
export function progressLine(s: InitStatus, width = 24): string {
  const p = s.progress;
  if (!p) return `${s.node_id}: ${s.state}`;
  const percent = Number(p.overall_percent ?? 0);
  const filled = Math.round((percent / 100) * width);
  const parts = [
    `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`,
    `${percent.toFixed(1).padStart(5)}%`,
    String(p.phase),
    `${p.tables_done}/${p.tables_total} tables`,
  ];
  if (['done', 'failed', 'cancelling'].includes(String(p.phase))) return parts.join('  ');
  if (p.current_table) parts.push(`${p.current_table} ${Number(p.current_table_percent ?? 0).toFixed(0)}%`);
  if (p.rows_per_second != null) parts.push(`${count(Number(p.rows_per_second))} rows/s`);
  if (p.bytes_per_second != null) parts.push(`${bytes(Number(p.bytes_per_second))}/s`);
  if (p.workers_active) parts.push(`${p.workers_active} workers`);
  if (p.lag_bytes != null && p.phase === 'catching_up') parts.push(`lag ${bytes(Number(p.lag_bytes))}`);
  if (p.eta_seconds != null) parts.push(`ETA ${duration(Number(p.eta_seconds))}`);
  return parts.join('  ');
}

// Exit code of a settled init (SPEC §4.8).
export function exitCodeForInit(s: InitStatus): ExitCodeValue {
  if (s.state === 'synchronized') return ExitCode.ok;
  if (s.state === 'uninitialized') return ExitCode.cancelled;
  switch (s.progress?.failure_kind) {
    case 'schema_mismatch':
      return ExitCode.schemaMismatch;
    case 'timeout':
      return ExitCode.timeout;
    case 'connection':
      return ExitCode.connection;
    default:
      return ExitCode.error;
  }
}

// A live line on a terminal; on a pipe, one line per phase change or every
// few seconds, so logs stay readable.
export function progressRenderer(stream: NodeJS.WriteStream): { render(s: InitStatus): void; end(): void } {
  let lastPhase = '';
  let lastAt = 0;
  let drawn = false;
  return {
    render(s) {
      const line = progressLine(s);
      if (stream.isTTY) {
        const columns = stream.columns || 120;
        stream.write(`\r${line.slice(0, columns - 1)}\x1b[K`);
        drawn = true;
        return;
      }
      const phase = String(s.progress?.phase ?? s.state);
      if (phase !== lastPhase || Date.now() - lastAt > 5000) {
        stream.write(`${line}\n`);
        lastPhase = phase;
        lastAt = Date.now();
      }
    },
    end() {
      if (drawn) stream.write('\n');
    },
  };
}

// What the last cancel of a node could not remove (the source was away),
// from its init.cancelled event: statements for the DBA to run there.
export async function leftOnSource(client: Client, nodeId: string): Promise<string[]> {
  const { rows } = await client.query(
    `SELECT details -> 'left_on_source' AS left FROM steep_repl.audit_log
     WHERE node_id = $1 AND event = 'init.cancelled' ORDER BY audit_id DESC LIMIT 1`,
    [nodeId],
  );
  return rows[0]?.left ?? [];
}

export function describeCancelled(nodeId: string, left: string[]): string {
  if (!left.length) return `initialization of ${nodeId} cancelled; nothing it created is left`;
  return `initialization of ${nodeId} cancelled; the source could not be reached, so run there:\n${left.map((l) => `  ${l}`).join('\n')}`;
}
