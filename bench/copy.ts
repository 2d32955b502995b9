// npm run bench -- copy [--mb 1100] [--rss-4x] [--nopk-mb N] [--split-mb 64]
// [--rounds 1] [--only a,b,...] [--logs dir]:
// the initial copy side by side on the same clusters and dataset: a raw
// binary COPY TO | COPY FROM pipe with 1 and 2 streams, native CREATE
// SUBSCRIPTION ... WITH (copy_data = true), and steep-repl's direct method
// through the agent with parallel 1, 2 and 4 (the big table split) and
// parallel 1 with the big table whole. Each run copies into a new, empty
// target database with the schema. Direct runs are checked (row count and
// a sum of row hashes per table) and report the agent's peak RSS. Runs on
// clusters of its own. See docs/bench.md.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cluster } from '../lib/embedded-cluster';
import { startInit } from '../lib/sql/startInit';
import { dropDatabase, query, withClient } from '../test/support/clusters';
import { followInit, InitFollower } from '../test/support/init-follower';
import { createNodeDb, dropReplicationObjects, registerPair } from '../test/support/node-pair';
import { AgentProcess } from '../test/support/processes';
import { waitUntil } from '../test/support/wait';
import { Benchmark } from './run';
import { attempt as attemptVariant, selectedVariants, withBenchClusters, combine, errorLine, highest, median, RoundResult } from './support-run';
import {
  bigTable,
  buildDataset,
  childPids,
  contentSums,
  Dataset,
  differences,
  MiB,
  numberArg,
  PipeItem,
  plainTarget,
  procStatus,
  rawPipe,
  rowCounts,
  schemaSql,
  smallTable,
  splitItems,
  stringArg,
} from './support-copy';

const smallTables = 10;
const runTimeoutMs = 60 * 60_000;
const rssGoal = 300 * MiB;

interface Result extends RoundResult {
  // direct: the agent's VmHWM at synchronized; the peak of its child
  // processes' summed VmRSS (the snapshot holder), sampled; its phases
  rss_peak_mb?: number;
  children_rss_peak_mb?: number;
  phases?: { setup: number; copy: number; finish: number };
  parts?: string;
}

// --logs <dir>: each direct run's agent log goes to <dir>/<node id>.log
let logDir: string | undefined;

// Every agent this run started, for the signal handler.
const agents = new Set<AgentProcess>();

async function rawRun(data: Dataset, target: Cluster, streams: number): Promise<Result> {
  const variant = `raw pipe ${streams} stream${streams > 1 ? 's' : ''}`;
  const db = await plainTarget(target, `raw_${streams}`, data);
  try {
    const items: PipeItem[] = [];
    for (const t of data.tables) {
      // the big tables split by key (or ctid) over the streams; the small ones whole
      const parts = streams > 1 && data.sizes[t.name] > data.bytes / 4 ? streams : 1;
      items.push(...(await splitItems(data.source.url, t, data.sizes[t.name], parts)));
    }
    const seconds = await rawPipe(data.source.url, db.url, items, streams);
    const bad = differences(data.counts, await rowCounts(db.url, Object.keys(data.counts)));
    if (bad.length) console.error(`MISMATCH after ${variant}: ${bad.join('; ')}`);
    return { variant, seconds, mb_per_s: data.bytes / MiB / seconds, check: bad.length ? 'MISMATCH' : 'counts ok', error: bad.join('; ') || undefined };
  } finally {
    await dropDatabase(target, db.name);
  }
}

async function nativeRun(data: Dataset, target: Cluster, binary: boolean): Promise<Result> {
  const variant = `native copy_data${binary ? ' binary' : ''}`;
  const db = await plainTarget(target, `native${binary ? '_bin' : ''}`, data);
  const tag = `bench_native${binary ? '_bin' : ''}`;
  try {
    await query(data.source.url, `CREATE PUBLICATION ${tag}_pub FOR TABLE ${data.tables.map((t) => `"${t.name}"`).join(', ')}`);
    const started = Date.now();
    await query(
      db.url,
      `CREATE SUBSCRIPTION ${tag}_sub CONNECTION 'host=127.0.0.1 port=${data.source.cluster.port} dbname=${data.source.name} user=postgres' PUBLICATION ${tag}_pub WITH (copy_data = true${binary ? ', binary = true' : ''})`,
    );
    await waitUntil(
      'every table of the native subscription ready',
      async () => (await query(db.url, "SELECT count(*) FILTER (WHERE srsubstate <> 'r')::int AS n FROM pg_subscription_rel"))[0].n === 0,
      runTimeoutMs,
      100,
    );
    const seconds = (Date.now() - started) / 1000;
    const bad = differences(data.counts, await rowCounts(db.url, Object.keys(data.counts)));
    if (bad.length) console.error(`MISMATCH after ${variant}: ${bad.join('; ')}`);
    return { variant, seconds, mb_per_s: data.bytes / MiB / seconds, check: bad.length ? 'MISMATCH' : 'counts ok', error: bad.join('; ') || undefined };
  } finally {
    await dropReplicationObjects([{ ...db, cluster: target }, data.source]);
    await dropDatabase(target, db.name);
  }
}

async function directRun(data: Dataset, targetCluster: Cluster, variant: string, id: string, options: Record<string, unknown>): Promise<Result> {
  const target = await createNodeDb(targetCluster, id, id, { installer: 'cli' });
  let agent: AgentProcess | undefined;
  let following: InitFollower | undefined;
  try {
    await query(target.url, schemaSql(data.tables));
    await registerPair(target, data.source);
    // A running agent, as a DBA has one: the measurement starts once it is up.
    agent = await AgentProcess.start(target.url);
    agents.add(agent);
    following = await followInit(target.url, target.id);
    // the agent's child processes (the snapshot holder) have memory of their own
    let childPeak = 0;
    const sampler = setInterval(() => {
      const sum = childPids(agent!.pid).reduce((s, pid) => s + (procStatus(pid)?.rss ?? 0), 0);
      childPeak = Math.max(childPeak, sum);
    }, 250);
    const started = Date.now();
    let synchronizedAt: number;
    try {
      await withClient(target.url, (client) => startInit(client, { target: target.id, source: data.source.id, method: 'direct', options }));
      synchronizedAt = await following.reached('synchronized', runTimeoutMs);
    } finally {
      clearInterval(sampler);
    }
    const seconds = (synchronizedAt - started) / 1000;
    const status = procStatus(agent.pid);
    const rss = status?.hwm ?? NaN;
    const at = (state: string) => following!.reachedAt(state);
    const copying = at('copying');
    const catchingUp = at('catching_up');
    const phases =
      copying && catchingUp ? { setup: (copying - started) / 1000, copy: (catchingUp - copying) / 1000, finish: (synchronizedAt - catchingUp) / 1000 } : undefined;
    const parts = await query(
      target.url,
      `SELECT string_agg(format('%s %s', n, split), ', ' ORDER BY split) AS s FROM (SELECT split, count(*) AS n FROM steep_repl.init_parts GROUP BY split) p`,
    ).then(
      (rows) => rows[0]?.s ?? undefined,
      () => undefined,
    );
    const bad = differences(data.sums, await contentSums(target.url, Object.keys(data.sums)));
    if (bad.length) console.error(`MISMATCH after ${variant}: ${bad.join('; ')}`);
    return {
      variant,
      seconds,
      mb_per_s: data.bytes / MiB / seconds,
      rss_peak_mb: rss / MiB,
      children_rss_peak_mb: childPeak / MiB,
      phases,
      parts,
      check: bad.length ? 'MISMATCH' : 'ok',
      error: bad.join('; ') || undefined,
    };
  } finally {
    await following?.close();
    if (agent && logDir) {
      fs.mkdirSync(logDir, { recursive: true });
      fs.writeFileSync(path.join(logDir, `${id}.log`), agent.raw.join('\n') + '\n');
    }
    if (agent) {
      await agent.stop();
      agents.delete(agent);
    }
    // Leave the source as it was: no publication or slot of this run.
    await dropReplicationObjects([target, data.source]);
    await dropDatabase(targetCluster, target.name);
  }
}

function describe(r: Result): string {
  const parts = [`${r.variant.padEnd(34)}`];
  if (r.seconds !== undefined) parts.push(`${r.seconds.toFixed(2).padStart(8)} s  ${r.mb_per_s!.toFixed(1).padStart(6)} MB/s`);
  if (r.rss_peak_mb !== undefined) parts.push(`agent peak RSS ${r.rss_peak_mb.toFixed(0)} MB (children ${r.children_rss_peak_mb!.toFixed(0)} MB)`);
  if (r.phases) parts.push(`(setup ${r.phases.setup.toFixed(2)} s, copy ${r.phases.copy.toFixed(2)} s, sequences + catch-up ${r.phases.finish.toFixed(2)} s)`);
  if (r.parts) parts.push(`parts: ${r.parts}`);
  parts.push(r.check);
  if (r.error) parts.push(r.error);
  if (r.load !== undefined) parts.push(`load ${r.load.toFixed(2)}`);
  return parts.join('  ');
}

// One variant over its rounds, with each phase's median and the highest RSS.
function combineRounds(rounds: Result[]): Result {
  return combine(rounds, (timed) => {
    const phaseTimes = timed.filter((r) => r.phases).map((r) => r.phases!);
    return {
      phases: phaseTimes.length
        ? { setup: median(phaseTimes.map((p) => p.setup)), copy: median(phaseTimes.map((p) => p.copy)), finish: median(phaseTimes.map((p) => p.finish)) }
        : undefined,
      rss_peak_mb: highest(timed, (r) => r.rss_peak_mb),
      children_rss_peak_mb: highest(timed, (r) => r.children_rss_peak_mb),
    };
  });
}

// Runs one variant; a failure is recorded, and the others still run.
function attempt(variant: string, results: Result[], run: () => Promise<Result>, prefix = ''): Promise<void> {
  const failed = (err: Error): Result => {
    console.error(`${variant} failed:`, err);
    return { variant, check: 'error', error: errorLine(err) };
  };
  return attemptVariant(results, run, failed, describe, prefix);
}

// raw4 only when asked for (--only): 4 streams on 2 cores, to tell the machine's limit from the engine's
const allVariants = ['raw1', 'raw2', 'raw4', 'native', 'native-bin', 'direct1', 'direct2', 'direct4', 'direct1-whole'] as const;

const bench: Benchmark = {
  description:
    'initial copy: raw binary COPY pipe (1 and 2 streams), native copy_data, steep-repl direct (parallel 1, 2, 4; split and whole): time, MB/s, ratios, agent peak RSS',
  async run(args) {
    const megabytes = numberArg(args, 'mb', 1100);
    const nopkMb = numberArg(args, 'nopk-mb', 0);
    const rounds = Math.max(1, numberArg(args, 'rounds', 1));
    const rss4x = args.includes('--rss-4x');
    // direct's threshold in the split runs: the big table is well above it
    const splitThreshold = `${numberArg(args, 'split-mb', 64)}MB`;
    logDir = stringArg(args, 'logs');
    const only = selectedVariants(stringArg(args, 'only'), allVariants, allVariants.filter((v) => v !== 'raw4'));

    await withBenchClusters('copy', agents, async (own) => {
      const results: Result[] = [];
      let rss4xResult: (Result & { table_mb: number }) | undefined;
      const { target } = own.clusters;
      // ~90% in one table with an integer key, the rest in small tables
      const tables = [
        bigTable('big', megabytes * 0.9 - nopkMb),
        ...(nopkMb > 0 ? [bigTable('big_nopk', nopkMb, false)] : []),
        ...Array.from({ length: smallTables }, (_, i) => smallTable(`small_${i}`, (megabytes * 0.1) / smallTables)),
      ];
      const data = await buildDataset(own.clusters.source, 'bench_src', tables);
      const bigBytes = data.sizes.big;
      // above the big table's size: direct copies it as one part
      const wholeThreshold = `${Math.ceil(bigBytes / MiB) + 1024}MB`;
      // Untimed: the first copy into the target cluster makes its WAL
      // segments (later ones recycle them) and warms the caches; the first
      // variant would pay for it alone.
      const warming = Date.now();
      await rawRun(data, target, 2);
      console.log(`warm-up (raw pipe 2 streams, untimed): ${((Date.now() - warming) / 1000).toFixed(1)} s`);
      console.log('');

      // a run's target node id names its round: a source registry keeps the row of a node it knows
      const plan: Array<[string, string, (round: number) => Promise<Result>]> = [
        ['raw1', 'raw pipe 1 stream', () => rawRun(data, target, 1)],
        ['raw2', 'raw pipe 2 streams', () => rawRun(data, target, 2)],
        ['raw4', 'raw pipe 4 streams', () => rawRun(data, target, 4)],
        ['native', 'native copy_data', () => nativeRun(data, target, false)],
        ['native-bin', 'native copy_data binary', () => nativeRun(data, target, true)],
        ...[1, 2, 4].map(
          (p): [string, string, (round: number) => Promise<Result>] => [
            `direct${p}`,
            `direct parallel ${p} (split > ${splitThreshold})`,
            (round) => directRun(data, target, `direct parallel ${p} (split > ${splitThreshold})`, `direct_p${p}_r${round}`, { parallel: p, split_tables_larger_than: splitThreshold }),
          ],
        ),
        [
          'direct1-whole',
          'direct parallel 1 (big table whole)',
          (round) => directRun(data, target, 'direct parallel 1 (big table whole)', `direct_p1_whole_r${round}`, { parallel: 1, split_tables_larger_than: wholeThreshold }),
        ],
      ];
      // Alternating order over the rounds, so no variant always runs on a warmer (or busier) server.
      const selected = plan.filter(([key]) => only.includes(key));
      const byVariant = new Map<string, Result[]>(selected.map(([, variant]) => [variant, []]));
      for (let round = 1; round <= rounds; round++) {
        for (const [, variant, run] of round % 2 ? selected : [...selected].reverse()) {
          await attempt(variant, byVariant.get(variant)!, () => run(round), rounds > 1 ? `round ${round}  ` : '');
        }
      }
      if (rounds > 1) {
        console.log('');
        for (const [, variant] of selected) {
          const combined = combineRounds(byVariant.get(variant)!);
          console.log(`median of ${rounds}: ${describe(combined)}`);
        }
      }
      results.push(...selected.map(([, variant]) => combineRounds(byVariant.get(variant)!)));

      if (rss4x) {
        // the agent's memory on a table 4x the big one, alone in a database of its own
        await query(data.source.url, 'DROP TABLE big');
        const big4x = bigTable('big4x', (bigBytes / MiB) * 4);
        console.log('');
        const data4x = await buildDataset(own.clusters.source, 'bench_src4x', [big4x]);
        const variant = `direct parallel 4 on big4x (split > ${splitThreshold})`;
        await attempt(variant, results, async () => {
          const r = await directRun(data4x, target, variant, 'direct_4x', { parallel: 4, split_tables_larger_than: splitThreshold });
          rss4xResult = { ...r, table_mb: data4x.bytes / MiB };
          return r;
        });
      }

      // ratios as speed: the other's time over this one's (>= 1: this one is as fast or faster)
      const seconds = (variant: string) => results.find((r) => r.variant === variant)?.seconds;
      const native = seconds('native copy_data');
      const raw2 = seconds('raw pipe 2 streams');
      const speed = (base: number | undefined, s: number | undefined) => (base && s ? base / s : undefined);
      const fmt = (v: number | undefined, goal?: number) => (v === undefined ? '' : `${v.toFixed(3)}×${goal !== undefined ? (v >= goal ? ' ✓' : ' ✗') : ''}`);
      const directs = results.filter((r) => r.variant.startsWith('direct') && !r.variant.includes('big4x'));

      console.log('');
      console.log(`dataset: ${(data.bytes / MiB).toFixed(0)} MB (pg_table_size of ${data.tables.length} tables; big: ${(bigBytes / MiB).toFixed(0)} MB)`);
      console.log('| variant | time to synchronized / all ready / done | MB/s | speed vs native (goal ≥ 1.0) | speed vs raw 2 streams (goal ≥ 0.9) | agent peak RSS (goal < 300 MB) | check |');
      console.log('|---|---|---|---|---|---|---|');
      for (const r of results) {
        const isDirect = r.variant.startsWith('direct') && !r.variant.includes('big4x');
        // big4x is another dataset: no ratio to the others
        const [vsNative, vsRaw2] = r.variant.includes('big4x') ? ['', ''] : [fmt(speed(native, r.seconds), isDirect ? 1.0 : undefined), fmt(speed(raw2, r.seconds), isDirect ? 0.9 : undefined)];
        console.log(
          `| ${r.variant} | ${r.seconds?.toFixed(2) ?? '–'} s | ${r.mb_per_s?.toFixed(1) ?? '–'} | ${vsNative} | ${vsRaw2} | ${r.rss_peak_mb !== undefined ? `${r.rss_peak_mb.toFixed(0)} MB${r.rss_peak_mb * MiB < rssGoal ? ' ✓' : ' ✗'} (+ ${r.children_rss_peak_mb!.toFixed(0)} MB children)` : ''} | ${r.check}${r.error ? `: ${r.error}` : ''} |`,
        );
      }
      const split1 = seconds(`direct parallel 1 (split > ${splitThreshold})`);
      const whole1 = seconds('direct parallel 1 (big table whole)');
      const splitVsWhole = speed(whole1, split1);
      if (splitVsWhole !== undefined) console.log(`split vs whole at parallel 1 (whole time / split time, goal ≥ 1.0): ${fmt(splitVsWhole, 1.0)}`);
      // the copy phase alone: without the setup and the handover, whose jitter is the same for both
      const copyPhase = (variant: string) => results.find((r) => r.variant === variant)?.phases?.copy;
      const splitVsWholeCopy = speed(copyPhase('direct parallel 1 (big table whole)'), copyPhase(`direct parallel 1 (split > ${splitThreshold})`));
      if (splitVsWholeCopy !== undefined) console.log(`split vs whole at parallel 1, copy phase only: ${fmt(splitVsWholeCopy, 1.0)}`);
      const best = directs.filter((r) => r.seconds).sort((a, b) => a.seconds! - b.seconds!)[0];
      if (best) console.log(`best direct: ${best.variant}: ${fmt(speed(native, best.seconds))} native, ${fmt(speed(raw2, best.seconds))} raw 2 streams`);

      const failed = results.filter((r) => r.check === 'MISMATCH' || r.check === 'error');
      console.log(
        JSON.stringify({
          bench: 'copy',
          dataset_mb: data.bytes / MiB,
          big_mb: bigBytes / MiB,
          tables: data.tables.length,
          results,
          ratios: {
            direct_over_native: Object.fromEntries(directs.map((r) => [r.variant, speed(native, r.seconds) ?? null])),
            direct_over_raw2: Object.fromEntries(directs.map((r) => [r.variant, speed(raw2, r.seconds) ?? null])),
            split_over_whole_parallel1: splitVsWhole ?? null,
            split_over_whole_parallel1_copy_phase: splitVsWholeCopy ?? null,
          },
          rss_4x: rss4xResult ? { table_mb: rss4xResult.table_mb, rss_peak_mb: rss4xResult.rss_peak_mb ?? null, seconds: rss4xResult.seconds ?? null } : null,
          failed: failed.map((r) => r.variant),
        }),
      );
      if (failed.length) throw new Error(`copy bench FAILED: ${failed.map((r) => `${r.variant} (${r.check}${r.error ? `: ${r.error}` : ''})`).join('; ')}`);
    });
  },
};

export default bench;
