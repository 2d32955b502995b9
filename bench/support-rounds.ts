// What every benchmark does with its variants: run one and record a failure
// without stopping the others, and fold --rounds into one result (the
// median time, the worst check, the highest load).
import * as os from 'node:os';

export interface RoundResult {
  variant: string;
  seconds?: number;
  mb_per_s?: number;
  check: 'ok' | 'counts ok' | 'MISMATCH' | 'error';
  error?: string;
  // the 1-minute load average when it ended: others' work on the 2 cores skews the times
  load?: number;
  // with --rounds: how many, and each one's time
  rounds?: number;
  all_seconds?: number[];
}

// Runs one variant; failed(err) makes the result of one that threw (and
// says what it wants said). The line goes out as soon as it ends.
export async function attempt<R extends RoundResult>(
  results: R[],
  run: () => Promise<R>,
  failed: (err: Error) => R,
  describe: (r: R) => string,
  prefix = '',
): Promise<void> {
  let result: R;
  try {
    result = await run();
  } catch (err) {
    result = failed(err as Error);
  }
  result.load = os.loadavg()[0];
  results.push(result);
  console.log(prefix + describe(result));
}

// The result a variant that threw records: its message's first line.
export const errorLine = (err: Error): string => err.message.split('\n')[0];

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

// One variant over its rounds: a failed round stands for all; else the
// round nearest the median time, with that time, the highest load and what
// more() adds from the timed rounds.
export function combine<R extends RoundResult>(rounds: R[], more: (timed: R[]) => Partial<R> = () => ({})): R {
  if (rounds.length === 1) return rounds[0];
  const failed = rounds.find((r) => r.check === 'MISMATCH' || r.check === 'error');
  const timed = rounds.filter((r) => r.seconds !== undefined);
  if (failed || !timed.length) return { ...(failed ?? rounds[0]), rounds: rounds.length };
  const seconds = median(timed.map((r) => r.seconds!));
  const nearest = [...timed].sort((a, b) => Math.abs(a.seconds! - seconds) - Math.abs(b.seconds! - seconds))[0];
  return {
    ...nearest,
    seconds,
    mb_per_s: (nearest.mb_per_s! * nearest.seconds!) / seconds,
    load: highest(timed, (r) => r.load),
    rounds: rounds.length,
    all_seconds: rounds.map((r) => r.seconds!),
    ...more(timed),
  };
}

// The highest of a field over the rounds, undefined where none has it.
export function highest<R>(rounds: R[], pick: (r: R) => number | undefined): number | undefined {
  return rounds.some((r) => pick(r) !== undefined) ? Math.max(...rounds.map((r) => pick(r) ?? 0)) : undefined;
}
