// What the benchmarks that compare variants share: clusters of their own
// that no Ctrl+C leaves behind, the variants --only names, running one and
// recording a failure without stopping the others, and folding --rounds
// into one result (the median time, the worst check, the highest load).
import * as os from 'node:os';
import { removeRunSync } from '../lib/embedded-cluster';
import { OwnClusterOptions, OwnClusters, startOwnClusters } from '../test/support/clusters';
import { AgentProcess } from '../test/support/processes';

// A source and a target cluster for run, removed afterwards with every
// agent of agents; on Ctrl+C or a kill as well (exit 130).
export async function withBenchClusters<T>(
  name: string,
  agents: Set<AgentProcess>,
  run: (own: OwnClusters<'source' | 'target'>) => Promise<T>,
  options: OwnClusterOptions<'source' | 'target'> = {},
): Promise<T> {
  const own = await startOwnClusters(`bench-${name}`, ['source', 'target'], options);
  const onSignal = (signal: NodeJS.Signals) => {
    for (const agent of agents) {
      try {
        process.kill(agent.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    removeRunSync(own.runDir);
    console.error(`\n${signal}: stopped the agents and removed the benchmark's clusters and what it wrote beside them`);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await run(own);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    for (const agent of agents) await agent.stop('SIGKILL');
    await own.remove();
  }
}

// --only a,b,...: those variants, each one known; else byDefault.
export function selectedVariants(only: string | undefined, all: readonly string[], byDefault: readonly string[]): string[] {
  const named = only?.split(',') ?? [...byDefault];
  const unknown = named.filter((v) => !all.includes(v));
  if (unknown.length) throw new Error(`unknown variants ${unknown.join(', ')}; known: ${all.join(', ')}`);
  return named;
}

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

// The median time of the rounds that passed their check, undefined if none did.
export function medianOfPassed(rounds: readonly RoundResult[] = []): number | undefined {
  const times = rounds.filter((r) => r.check === 'ok' && r.seconds !== undefined).map((r) => r.seconds!);
  return times.length ? median(times) : undefined;
}

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
