// Follows one node's initialization until it settles: state changes and
// progress arrive by NOTIFY; the whole status is re-read after every
// (re)connect because notifications sent meanwhile are lost.
import { Client, ClientConfig } from 'pg';
import { ExitCode, ExitCodeValue } from '../lib/errors';
import { channels, listen, ProgressNotification, StateNotification, VerifyProgressNotification } from '../lib/notifications';
import { bytes, bytesPerSecond, eta, percent, rowsPerSecond, shellWord } from '../lib/format';
import { getInitStatus, InitStatus } from '../lib/sql/getInitStatus';
import type { LeftBehind } from '../lib/sql/getLeftBehind';
import type { StatusFollower } from './follow-status';
import { oneReadAtATime } from './one-read-at-a-time';

export interface FollowOptions {
  // Renders the node's progress; called on every update.
  render(status: InitStatus): void;
  // Settles when the node leaves its in-progress states (or is uninitialized
  // after a cancel).
  settled?(status: InitStatus): boolean;
  // A verify's progress on the node ({kind: 'verify', ...}: a reinit's last
  // phase runs one), which is not the init's progress row.
  onVerify?(progress: VerifyProgressNotification): void;
}

export const initSettled = (s: InitStatus): boolean => !s.in_progress && s.state !== 'preparing';

export function followInit(config: ClientConfig, client: Client, nodeId: string, options: FollowOptions): StatusFollower<InitStatus> {
  let status: InitStatus | undefined;
  let finish!: (s: InitStatus) => void;
  let fail!: (err: Error) => void;
  const done = new Promise<InitStatus>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const settled = options.settled ?? initSettled;
  // Nothing is drawn past the settled status: the caller prints its last lines then.
  let finished = false;
  const update = (next: InitStatus) => {
    if (finished) return;
    status = next;
    options.render(next);
    if (settled(next)) {
      finished = true;
      finish(next);
    }
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
  const readOnce = () =>
    getInitStatus(reader, nodeId)
      .catch(async (err) => {
        if (!linkDropped) throw err;
        replacement ??= newReader();
        return getInitStatus(await replacement, nodeId);
      })
      .then(update, (err) => stopped || fail(err));
  const reread = oneReadAtATime(readOnce, () => stopped);
  const listener = listen(config, [channels.state, channels.progress], {
    onConnected: () => reread(),
    onDisconnected: () => {
      linkDropped = true;
      replacement = undefined;
    },
    onNotification: (channel, payload) => {
      if ((payload as { node_id?: string }).node_id !== nodeId || !status) return;
      if (channel === channels.progress && (payload as { kind?: string }).kind === 'verify') {
        options.onVerify?.(payload as VerifyProgressNotification);
        reread();
      } else if (channel === channels.progress && status.progress) {
        // The payload is the progress row, shown at once; what it lacks (phases,
        // options) stays from the last read. The parts a method copies in
        // (planned at any time, moving with every report) are not in it: read again.
        // A payload older than what a read already showed (it was on its way
        // during the read) is not shown: the phase would step back for a moment.
        const row = payload as ProgressNotification;
        if (!(Date.parse(row.updated_at) < Date.parse(status.progress.updated_at))) update({ ...status, progress: { ...status.progress, ...row } });
        reread();
      } else if (channel === channels.progress) {
        reread();
      } else {
        const change = payload as StateNotification;
        status = { ...status, state: change.to };
        reread();
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

// "[########------------]   40.2%  copying  3/8 tables  public.big 57%  12.3k rows/s  48.1MB/s  ETA 1m02s"
export function progressLine(s: InitStatus, width = 24): string {
  const p = s.progress;
  if (!p) return `${s.node_id}: ${s.state}`;
  const overall = Math.min(100, Math.max(0, Number(p.overall_percent ?? 0)));
  const filled = Math.floor((overall / 100) * width);
  const parts = [
    `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`,
    percent(overall, 1).padStart(6),
    phaseText(s),
    `${p.tables_done}/${p.tables_total} tables`,
  ];
  if (s.parts) parts.push(`${s.parts.done}/${s.parts.total} parts`);
  // a reinit's verify has a line of its own (reinitRenderer)
  if (['done', 'failed', 'cancelling', 'verifying'].includes(p.phase)) return parts.join('  ');
  // with parts, the tables being copied are on the part lines
  if (p.current_table && !s.parts?.active.length) parts.push(`${p.current_table} ${percent(p.current_table_percent ?? 0)}`);
  if (p.rows_per_second != null) parts.push(rowsPerSecond(p.rows_per_second));
  if (p.bytes_per_second != null) parts.push(bytesPerSecond(p.bytes_per_second));
  if (p.workers_active) parts.push(`${p.workers_active} workers`);
  if (p.lag_bytes != null && p.phase === 'catching_up') parts.push(`lag ${bytes(p.lag_bytes)}`);
  if (p.eta_seconds != null) parts.push(eta(p.eta_seconds));
  return parts.join('  ');
}

// The phase as the lines say it: a two-phase init verifies its snapshot
// while preparing and loads it while copying.
export function phaseText(s: InitStatus): string {
  const p = s.progress!;
  if (p.method === 'two-phase' && p.phase === 'preparing') return 'verifying snapshot';
  if (p.method === 'two-phase' && p.phase === 'copying') return `loading snapshot ${snapshotOf(s) ?? ''}`.trimEnd();
  return p.phase;
}

// The snapshot a two-phase init loads: its id once the agent resolved it,
// else the option as given (an id or the directory).
export function snapshotOf(s: InitStatus): string | undefined {
  const recorded = s.method_state?.snapshot_id;
  const given = s.progress?.options?.snapshot;
  return recorded ?? (typeof given === 'string' ? given : undefined);
}

// One line per part being copied (a method that copies in parts), by worker:
// "  worker 2  public.big part 3/8  41.2%  12.3k rows/s", with the leaf read
// when it is a partition of the planned table.
export function partLines(s: InitStatus): string[] {
  if (!s.parts || ['done', 'failed', 'cancelling'].includes(String(s.progress?.phase))) return [];
  return s.parts.active.map((a) =>
    [
      `  worker ${a.worker ?? '?'}`,
      `${partTable(a)} part ${a.part_no}/${a.part_count}`,
      percent(a.percent, 1).padStart(6),
      rowsPerSecond(a.rows_per_second),
    ].join('  '),
  );
}

// "public.events (public.events_2)": the planned table and, if another, the relation read.
export const partTable = (a: { label: string; leaf: string }): string => (a.leaf && a.leaf !== a.label ? `${a.label} (${a.leaf})` : a.label);

// The overall line and the part lines.
export const progressLines = (s: InitStatus): string[] => [progressLine(s), ...partLines(s)];

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

// Live lines on a terminal (the overall line, then one per part being
// copied); on a pipe, the lines once per phase change or every few
// seconds, so logs stay readable.
export function progressRenderer(stream: NodeJS.WriteStream): { render(s: InitStatus): void; end(): void } {
  // by the phase as the line names it: a two-phase load's line comes again once its snapshot id is known
  return liveRenderer(stream, progressLines, (s) => (s.progress ? phaseText(s) : s.state));
}

// lines: what one status shows; phase: a change of it writes the lines at
// once on a pipe. Used for inits and for snapshot generate.
export function liveRenderer<T>(stream: NodeJS.WriteStream, linesOf: (s: T) => string[], phaseOf: (s: T) => string): { render(s: T): void; end(): void } {
  let lastPhase = '';
  let lastAt = 0;
  // lines drawn by the last render, redrawn in place by the next
  let drawn = 0;
  return {
    render(s) {
      const lines = linesOf(s);
      if (stream.isTTY) {
        // Cut to the width: a wrapped line would throw off the cursor moves.
        const columns = stream.columns || 120;
        const up = drawn > 1 ? `\x1b[${drawn - 1}A` : '';
        stream.write(`${up}\r${lines.map((l) => `${l.slice(0, columns - 1)}\x1b[K`).join('\n')}\x1b[J`);
        drawn = lines.length;
        return;
      }
      const phase = phaseOf(s);
      if (phase !== lastPhase || Date.now() - lastAt > 5000) {
        stream.write(`${lines.join('\n')}\n`);
        lastPhase = phase;
        lastAt = Date.now();
      }
    },
    // Leaves the lines drawn; what follows starts below them.
    end() {
      if (drawn) stream.write('\n');
      drawn = 0;
    },
  };
}

// Built from what the agent found after its cleanup (getLeftBehind), never assumed.
export function describeCancelled(nodeId: string, left: LeftBehind): string {
  const lines = (statements: string[]) => statements.map((l) => `  ${l}`).join('\n');
  const parts: string[] = [];
  if (left.on_target.length) parts.push(`still on this node, remove with:\n${lines(left.on_target)}`);
  if (!left.source_checked) parts.push(`the source could not be reached, so run there:\n${lines(left.on_source)}`);
  else if (left.on_source.length) parts.push(`still on the source, run there:\n${lines(left.on_source)}`);
  if (!parts.length) return `initialization of ${nodeId} cancelled; nothing it created is left (checked on both nodes)`;
  return `initialization of ${nodeId} cancelled; ${parts.join('\n')}`;
}

// How cancelOnInterrupt names what it cancels: "the initialization of
// node_b", what the agent does once the cancel is recorded, and the command
// that cancels it later.
export interface CancelWords {
  subject: string;
  recorded: string;
  cancelCommand: string;
}

export const initCancelWords = (nodeId: string): CancelWords => ({
  subject: `the initialization of ${nodeId}`,
  recorded: `the agent finishes it and removes what the init created. Watch it: steep-repl node progress ${shellWord(nodeId)}`,
  cancelCommand: `steep-repl node cancel ${shellWord(nodeId)}`,
});

// Ctrl+C (or SIGTERM) while an init is followed, from the first signal to
// the command's exit:
// - the first asks the node to cancel; following goes on until the agent
//   has cleaned up (exit 4 then, from the settled state);
// - a second, while that cleanup is waited for, stops waiting: once the
//   cancel request is recorded the agent finishes it anyway, so the command
//   says so and exits 4 (a request still on its way is waited for first);
// - a third leaves at once: 4 if the request is recorded, else 130 with
//   what to run;
// - once the follow has settled, the command is printing its last lines:
//   a signal then is ignored, and another exits with the settled init's code
//   (4 for a completed cancel), never 130.
export function cancelOnInterrupt(options: {
  nodeId: string;
  requestCancel(): Promise<unknown>;
  // what is cancelled, for a verify or a reinit (default: the initialization)
  words?: CancelWords;
  // ends a live progress line before a message
  beforeWrite(): void;
  write(line: string): void;
  exit(code: number): void;
}): { settled(code: number): void } {
  const { nodeId, write } = options;
  const words = options.words ?? initCancelWords(nodeId);
  let signals = 0;
  let settled: number | undefined;
  let lateSignals = 0;
  let request: Promise<boolean> | undefined;
  let recorded: boolean | undefined;
  const say = (line: string) => {
    options.beforeWrite();
    write(`${line}\n`);
  };
  const onSignal = () => {
    if (settled !== undefined) {
      if (++lateSignals > 1) options.exit(settled);
      return;
    }
    signals += 1;
    if (signals === 1) {
      say(`cancelling ${words.subject}... (Ctrl+C again to stop waiting; the agent finishes the cancel)`);
      request = options.requestCancel().then(
        () => (recorded = true),
        (err: Error) => {
          say(`cancel failed: ${err.message}`);
          return (recorded = false);
        },
      );
      return;
    }
    if (signals === 2) {
      void request!.then((done) => {
        if (settled !== undefined) return;
        if (done) {
          say(`the cancel is recorded; ${words.recorded}`);
          options.exit(ExitCode.cancelled);
        } else {
          say(`nothing was cancelled; ${words.subject} goes on (${words.cancelCommand} to cancel it)`);
          options.exit(130);
        }
      });
      return;
    }
    if (recorded) return options.exit(ExitCode.cancelled);
    say(`left without waiting; the cancel request may not be recorded: ${words.cancelCommand}`);
    options.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    // The handlers stay until the process exits: a late Ctrl+C must not
    // turn a completed cancel (exit 4) into 130.
    // Node restores the default signal action while it tears down after the
    // event loop emptied: a Ctrl+C in that moment would still kill the
    // process (130). An explicit exit once the loop is empty leaves no such moment.
    settled: (code) => {
      settled = code;
      process.once('beforeExit', () => process.exit(process.exitCode ?? code));
    },
  };
}

// Waits for a follow drawn live on stderr to end, Ctrl+C cancelling what it
// follows (cancelOnInterrupt, which exits a late signal with exitCode of
// what it ended as). header: written once Ctrl+C is handled (a script that
// reads it may signal at once).
export async function followWithCancel<T>(
  following: StatusFollower<T>,
  renderer: { end(): void },
  cancel: { nodeId: string; requestCancel(): Promise<unknown>; words?: CancelWords; exitCode(s: T): ExitCodeValue; header?: string },
): Promise<T> {
  const interrupts = cancelOnInterrupt({
    nodeId: cancel.nodeId,
    requestCancel: cancel.requestCancel,
    words: cancel.words,
    beforeWrite: () => renderer.end(),
    write: (line) => process.stderr.write(line),
    exit: (code) => process.exit(code),
  });
  if (cancel.header) process.stderr.write(`${cancel.header}\n`);
  let final: T | undefined;
  try {
    final = await following.done;
    renderer.end();
  } finally {
    interrupts.settled(final !== undefined ? cancel.exitCode(final) : ExitCode.error);
    await following.stop();
  }
  return final;
}
