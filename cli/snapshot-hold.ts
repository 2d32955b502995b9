// node prepare --for pg_dump in the foreground: the exported snapshot lives
// as long as the replication connection that made the slot stays open and
// idle, so the command waits here until one of: Enter, Ctrl+C or SIGTERM,
// --hold elapsed, or the connection ended (node complete or cancel ended
// it, or it was lost).
import { ExportedSlot } from '../lib/slot-with-snapshot';

export type HoldEnd =
  | { kind: 'enter' }
  | { kind: 'signal'; signal: NodeJS.Signals }
  | { kind: 'elapsed' }
  // the connection ended without us: the caller finds out who ended it
  | { kind: 'ended'; error?: Error };

// setTimeout holds at most 2^31-1 ms (24.8 days); --hold may be a year.
const maxTimerMs = 2 ** 31 - 1;

export function holdSnapshot(slot: ExportedSlot, holdMs: number, input: NodeJS.ReadStream = process.stdin): Promise<HoldEnd> {
  return new Promise<HoldEnd>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = Date.now() + holdMs;
    const arm = () => {
      const left = deadline - Date.now();
      if (left <= 0) return finish({ kind: 'elapsed' });
      timer = setTimeout(arm, Math.min(left, maxTimerMs));
    };
    // A line on stdin is Enter; the end of stdin is not (a background run has none).
    const onData = (chunk: Buffer | string) => {
      if (String(chunk).includes('\n')) finish({ kind: 'enter' });
    };
    const onSignal = (signal: NodeJS.Signals) => finish({ kind: 'signal', signal });
    let settled = false;
    function finish(end: HoldEnd) {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      input.off('data', onData);
      input.pause();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(end);
    }
    input.on('data', onData);
    input.on('error', () => undefined);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    void slot.closed.then((error) => finish({ kind: 'ended', error }));
    arm();
  });
}

// --hold: seconds, or a number with s, m, h, d or w ('90m', '2h', '1d').
export function holdSeconds(value: string): number | undefined {
  const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  const match = /^\s*(\d+)\s*([smhdw]?)\s*$/.exec(value);
  if (!match) return undefined;
  const seconds = Number(match[1]) * (match[2] ? units[match[2]] : 1);
  return Number.isSafeInteger(seconds) && seconds > 0 ? seconds : undefined;
}
