// npm run bench -- reinit [--mb 100] [--rounds 1] [--pause-ms 5]
// [--only raw,native,reinit] [--logs DIR]: one table (`big`, about --mb
// of pg_table_size) re-copied while another (`busy`) receives inserts on
// the source all along, side by side on the same clusters and data:
// - reinit: steep_repl.start_reinit(node, '{"tables":["big"]}') on a target
//   synchronized through a direct init, its agent running, until the node
//   is synchronized again (the re-copy and the verify of big at its end);
// - native: the same re-copy by hand on a plain publication/subscription
//   pair with the same subscription options: ALTER PUBLICATION DROP TABLE,
//   REFRESH (copy_data = false), TRUNCATE on the subscriber, ADD TABLE,
//   REFRESH (copy_data = true) until big is ready. The same engine (the
//   table-sync worker's COPY) without steep-repl's waits and verify: the
//   comparable baseline;
// - raw: a binary COPY TO | COPY FROM pipe of big into an empty table on
//   the target cluster: the floor of moving the bytes (no writes, nothing
//   else kept replicating).
// For reinit and native: the writes that arrived on the subscriber's busy
// during the re-copy, the longest time none arrived, and both tables equal
// to the source's afterwards. Goal: reinit < 15 s on these 2 cores.
import { Client } from 'pg';
import createSubscriber from 'pg-listen';
import { Cluster } from '../lib/embedded-cluster';
import { channels, EventNotification } from '../lib/notifications';
import { createDatabase, dropDatabase, query } from '../test/support/clusters';
import { followInit } from '../test/support/init-follower';
import { dropReplicationObjects, NodeDb } from '../test/support/node-pair';
import { AgentProcess } from '../test/support/processes';
import { waitUntil } from '../test/support/wait';
import { startWriter, Writer } from '../test/support/writer';
import { Benchmark } from './run';
import { attempt, errorLine, medianOfPassed, RoundResult, selectedVariants, withBenchClusters } from './support-run';
import { bigTable, contentSums, Dataset, differences, generate, MiB, numberArg, plainTarget, rawPipe, schemaSql, stringArg, TableSpec } from './support-copy';
import { missingFunctions, nodeState, saveAgentLog, secondsSince, synchronizedPair } from './support-synced';

const agents = new Set<AgentProcess>();
const runTimeoutMs = 10 * 60_000;
const goalSeconds = 15;
// the writer's rows: ids from here on, one insert a transaction
const firstWriterId = 1_000_000;

const busyTable: TableSpec = {
  name: 'busy',
  columns: 'id bigint PRIMARY KEY, v text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp()',
  fill: ['INSERT INTO busy (id, v) SELECT g, md5(g::text) FROM generate_series(1, 1000) g'],
  key: 'id',
};

interface Result extends RoundResult {
  // writes on busy: committed on the source and arrived on the subscriber
  // between the start and the end of the re-copy; the longest time in it
  // with none arriving (sampled every 100 ms)
  writes_committed?: number;
  writes_arrived?: number;
  longest_stall_seconds?: number;
  // reinit: the state it ended in, each event's arrival (seconds from start_reinit)
  state?: string;
  events?: Record<string, number>;
  mb?: number;
}

// The subscriber's busy rows of the writer, every 100 ms, with when.
function sampleArrivals(url: string): { samples: Array<[number, number]>; stop(): Promise<void> } {
  const samples: Array<[number, number]> = [];
  let running = true;
  const done = (async () => {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      while (running) {
        const { rows } = await client.query('SELECT count(*)::int AS n FROM busy WHERE id >= $1', [firstWriterId]);
        samples.push([Date.now(), rows[0].n]);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await client.end();
    }
  })();
  return {
    samples,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

// Arrivals between from and to: how many, and the longest gap between two increases.
function arrivals(samples: Array<[number, number]>, from: number, to: number): { arrived: number; stall: number } {
  const before = [...samples].reverse().find(([at]) => at <= from) ?? samples[0];
  const inside = samples.filter(([at]) => at > from && at <= to);
  const last = inside[inside.length - 1] ?? before;
  let lastIncrease = from;
  let stall = 0;
  let previous = before[1];
  for (const [at, n] of inside) {
    if (n > previous) {
      stall = Math.max(stall, at - lastIncrease);
      lastIncrease = at;
      previous = n;
    }
  }
  stall = Math.max(stall, to - lastIncrease);
  return { arrived: last[1] - before[1], stall: stall / 1000 };
}

const writerFor = (url: string, pauseMs: number, offset: number): Writer =>
  startWriter(url, (n) => [{ text: 'INSERT INTO busy (id, v) VALUES ($1, $2)', values: [firstWriterId + offset + n, `w${n}`] }], { pauseMs });

// The writer stopped, the subscriber caught up with the source (busy's
// count equal), then both tables' content compared.
async function settleAndCheck(sourceUrl: string, targetUrl: string, writer: Writer): Promise<Pick<Result, 'check' | 'error'>> {
  await writer.stop();
  const names = ['big', 'busy'];
  let bad: string[] = [];
  await waitUntil(
    'the subscriber to hold what the source holds',
    async () => {
      bad = differences(await contentSums(sourceUrl, names), await contentSums(targetUrl, names));
      return bad.length === 0;
    },
    60_000,
    250,
  ).catch(() => undefined);
  return { check: bad.length ? 'MISMATCH' : 'ok', error: bad.join('; ') || undefined };
}

async function reinitRun(pair: { data: Dataset; target: NodeDb }, round: number, pauseMs: number): Promise<Result> {
  const { data, target } = pair;
  const variant = 'steep-repl reinit';
  const events: Record<string, number> = {};
  const listener = createSubscriber({ connectionString: target.url });
  const following = await followInit(target.url, target.id);
  const writer = writerFor(data.source.url, pauseMs, round * 10_000_000);
  const sampler = sampleArrivals(target.url);
  try {
    let started = 0;
    listener.notifications.on(channels.events, (e: EventNotification) => {
      if (e.node_id === target.id && started && events[e.event] === undefined) events[e.event] = secondsSince(started);
    });
    await listener.connect();
    await listener.listenTo(channels.events);
    // the writes in a steady stream before the re-copy starts
    await new Promise((r) => setTimeout(r, 1000));
    const committedBefore = writer.counts.transactions;
    started = Date.now();
    await query(target.url, 'SELECT steep_repl.start_reinit($1, $2::jsonb) AS r', [target.id, JSON.stringify({ tables: ['big'] })]);
    const ended = await waitUntil(
      `${target.id} to end its reinit`,
      () => following.states.find((s) => ['synchronized', 'diverged', 'failed'].includes(s.payload.to)),
      runTimeoutMs,
      20,
    );
    const endedAt = ended.at;
    const committed = writer.counts.transactions - committedBefore;
    if (writer.error) throw writer.error;
    await new Promise((r) => setTimeout(r, 200));
    await sampler.stop();
    const { arrived, stall } = arrivals(sampler.samples, started, endedAt);
    const state = await nodeState(target);
    const checked = await settleAndCheck(data.source.url, target.url, writer);
    const good = state === 'synchronized' && checked.check === 'ok';
    return {
      variant,
      seconds: (endedAt - started) / 1000,
      mb_per_s: data.sizes.big / MiB / ((endedAt - started) / 1000),
      state,
      events,
      writes_committed: committed,
      writes_arrived: arrived,
      longest_stall_seconds: stall,
      check: good ? 'ok' : checked.check === 'ok' ? 'MISMATCH' : checked.check,
      error: good ? undefined : [state !== 'synchronized' ? `node ${state}: ${ended.payload.reason ?? ''}` : '', checked.error ?? ''].filter(Boolean).join('; '),
    };
  } finally {
    await sampler.stop().catch(() => undefined);
    await writer.stop().catch(() => undefined);
    await following.close();
    await listener.close().catch(() => undefined);
  }
}

interface NativePair {
  source: { name: string; url: string };
  target: { name: string; url: string };
  publication: string;
  subscription: string;
}

// A plain pair on the same clusters: the same tables and rows, a
// publication of both, a subscription with the steep-repl subscription's
// binary setting, synchronized (untimed).
async function nativePair(clusters: { source: Cluster; target: Cluster }, tables: TableSpec[], binary: boolean): Promise<NativePair> {
  const source = await createDatabase(clusters.source, 'bench_reinit_nat_src');
  await query(source.url, schemaSql(tables));
  await generate(source.url, tables);
  const target = await createDatabase(clusters.target, 'bench_reinit_nat_tgt');
  await query(target.url, schemaSql(tables));
  const publication = 'bench_native_pub';
  const subscription = 'bench_native_sub';
  await query(source.url, `CREATE PUBLICATION ${publication} FOR TABLE big, busy`);
  await query(
    target.url,
    `CREATE SUBSCRIPTION ${subscription} CONNECTION 'host=127.0.0.1 port=${clusters.source.port} dbname=${source.name} user=postgres' PUBLICATION ${publication} WITH (copy_data = true, binary = ${binary})`,
  );
  await waitUntil(
    'the native subscription ready',
    async () => (await query(target.url, "SELECT count(*) FILTER (WHERE srsubstate <> 'r')::int AS n FROM pg_subscription_rel"))[0].n === 0,
    runTimeoutMs,
    100,
  );
  await query(target.url, 'VACUUM (FREEZE, ANALYZE)');
  return { source, target, publication, subscription };
}

async function nativeRun(native: NativePair, bigBytes: number, round: number, pauseMs: number): Promise<Result> {
  const variant = 'native drop/refresh/truncate/add/refresh';
  const writer = writerFor(native.source.url, pauseMs, round * 10_000_000);
  const sampler = sampleArrivals(native.target.url);
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const committedBefore = writer.counts.transactions;
    const started = Date.now();
    const events: Record<string, number> = {};
    await query(native.source.url, `ALTER PUBLICATION ${native.publication} DROP TABLE big`);
    await query(native.target.url, `ALTER SUBSCRIPTION ${native.subscription} REFRESH PUBLICATION WITH (copy_data = false)`);
    events.refreshed_without = secondsSince(started);
    await query(native.target.url, 'TRUNCATE big');
    events.truncated = secondsSince(started);
    await query(native.source.url, `ALTER PUBLICATION ${native.publication} ADD TABLE big`);
    await query(native.target.url, `ALTER SUBSCRIPTION ${native.subscription} REFRESH PUBLICATION WITH (copy_data = true)`);
    events.refreshed_with = secondsSince(started);
    const endedAt = await waitUntil(
      'big ready again on the native subscriber',
      async () => (await query(native.target.url, "SELECT count(*)::int AS n FROM pg_subscription_rel WHERE srrelid = 'big'::regclass AND srsubstate = 'r'"))[0].n === 1 && Date.now(),
      runTimeoutMs,
      20,
    );
    const committed = writer.counts.transactions - committedBefore;
    if (writer.error) throw writer.error;
    await new Promise((r) => setTimeout(r, 200));
    await sampler.stop();
    const { arrived, stall } = arrivals(sampler.samples, started, endedAt);
    const checked = await settleAndCheck(native.source.url, native.target.url, writer);
    return {
      variant,
      seconds: (endedAt - started) / 1000,
      mb_per_s: bigBytes / MiB / ((endedAt - started) / 1000),
      events,
      writes_committed: committed,
      writes_arrived: arrived,
      longest_stall_seconds: stall,
      ...checked,
    };
  } finally {
    await sampler.stop().catch(() => undefined);
    await writer.stop().catch(() => undefined);
  }
}

async function rawRun(data: Dataset, target: Cluster): Promise<Result> {
  const db = await plainTarget(target, 'bench_reinit_raw', data);
  try {
    const seconds = await rawPipe(data.source.url, db.url, [{ table: 'big', bytes: data.sizes.big }], 1);
    const bad = differences({ big: data.sums.big }, await contentSums(db.url, ['big']));
    return { variant: 'raw COPY pipe of big', seconds, mb_per_s: data.sizes.big / MiB / seconds, check: bad.length ? 'MISMATCH' : 'ok', error: bad.join('; ') || undefined };
  } finally {
    await dropDatabase(target, db.name);
  }
}

function describe(r: Result): string {
  const parts = [r.variant.padEnd(42)];
  if (r.seconds !== undefined) parts.push(`${r.seconds.toFixed(2).padStart(7)} s  ${r.mb_per_s!.toFixed(1).padStart(6)} MB/s`);
  if (r.state) parts.push(`state ${r.state}`);
  if (r.writes_committed !== undefined) parts.push(`busy: ${r.writes_committed} writes committed, ${r.writes_arrived} arrived during it, longest without one ${r.longest_stall_seconds!.toFixed(2)} s`);
  if (r.events && Object.keys(r.events).length)
    parts.push(
      `(${Object.entries(r.events)
        .sort((a, b) => a[1] - b[1])
        .map(([k, v]) => `${k}@${v.toFixed(2)}`)
        .join(' ')})`,
    );
  parts.push(r.check);
  if (r.error) parts.push(r.error);
  if (r.load !== undefined) parts.push(`load ${r.load.toFixed(2)}`);
  return parts.join('  ');
}

const allVariants = ['raw', 'native', 'reinit'] as const;

const bench: Benchmark = {
  description: 'reinit of one table while another receives writes vs the same re-copy by hand on a native pair (and a raw COPY pipe): time to synchronized, writes that arrived meanwhile',
  async run(args) {
    const megabytes = numberArg(args, 'mb', 100);
    const rounds = Math.max(1, numberArg(args, 'rounds', 1));
    const pauseMs = numberArg(args, 'pause-ms', 5);
    const only = selectedVariants(stringArg(args, 'only'), allVariants, allVariants);
    const logDir = stringArg(args, 'logs');
    await withBenchClusters('reinit', agents, async (own) => {
      const tables = [bigTable('big', megabytes), busyTable];
      const pair = await synchronizedPair(own.clusters, 'bench_reinit', tables, agents);
      const { data, target } = pair;
      let native: NativePair | undefined;
      try {
        const missing = await missingFunctions(target.url, ['start_reinit']);
        if (missing.length) console.log(`steep_repl.${missing.join(', ')} not installed: the reinit variant is skipped`);
        const [{ binary }] = await query(target.url, 'SELECT bool_or(subbinary) AS binary FROM pg_subscription');
        if (only.includes('native')) {
          const t0 = Date.now();
          native = await nativePair(own.clusters, tables, Boolean(binary));
          console.log(`native pair (binary = ${Boolean(binary)}, as the steep-repl subscription): synchronized in ${secondsSince(t0).toFixed(1)} s, untimed`);
        }
        console.log('');
        const plan: Array<[string, string, (round: number) => Promise<Result>]> = [
          ['raw', 'raw COPY pipe of big', () => rawRun(data, own.clusters.target)],
          ['native', 'native drop/refresh/truncate/add/refresh', (round) => nativeRun(native!, data.sizes.big, round, pauseMs)],
          ['reinit', 'steep-repl reinit', (round) => reinitRun(pair, round, pauseMs)],
        ];
        const selected = plan.filter(([key]) => only.includes(key) && (key !== 'reinit' || !missing.length));
        const byVariant = new Map<string, Result[]>(selected.map(([, v]) => [v, []]));
        for (let round = 1; round <= rounds; round++) {
          for (const [, variant, run] of round % 2 ? selected : [...selected].reverse()) {
            await attempt(
              byVariant.get(variant)!,
              () => run(round),
              (err) => ({ variant, check: 'error', error: errorLine(err) }),
              describe,
              rounds > 1 ? `round ${round}  ` : '',
            );
          }
        }
        const medianOf = (variant: string) => medianOfPassed(byVariant.get(variant));
        const reinit = medianOf('steep-repl reinit');
        const nativeSeconds = medianOf('native drop/refresh/truncate/add/refresh');
        const raw = medianOf('raw COPY pipe of big');
        console.log('');
        console.log(`big: ${(data.sizes.big / MiB).toFixed(0)} MB, ${data.counts.big} rows; busy: one insert a transaction, ${pauseMs} ms apart${rounds > 1 ? `; medians of ${rounds} rounds` : ''}`);
        console.log('| variant | time | over native | writes to busy committed / arrived meanwhile | longest without an arrival | check |');
        console.log('|---|---|---|---|---|---|');
        for (const [, variant] of selected) {
          const s = medianOf(variant);
          const last = byVariant.get(variant)!.slice(-1)[0];
          const goal = variant === 'steep-repl reinit' && s !== undefined ? ` (goal < ${goalSeconds} s ${s < goalSeconds ? '✓' : '✗'})` : '';
          console.log(
            `| ${variant} | ${s?.toFixed(2) ?? '–'} s${goal} | ${s !== undefined && nativeSeconds ? `${(s / nativeSeconds).toFixed(2)}×` : ''} | ${last.writes_committed !== undefined ? `${last.writes_committed} / ${last.writes_arrived}` : ''} | ${last.longest_stall_seconds !== undefined ? `${last.longest_stall_seconds.toFixed(2)} s` : ''} | ${last.check}${last.error ? `: ${last.error}` : ''} |`,
          );
        }
        saveAgentLog(logDir, pair.agent);
        const all = [...byVariant.values()].flat();
        const failed = all.filter((r) => r.check === 'MISMATCH' || r.check === 'error');
        console.log(
          JSON.stringify({
            bench: 'reinit',
            big_mb: data.sizes.big / MiB,
            big_rows: Number(data.counts.big),
            pause_ms: pauseMs,
            results: all,
            ratios: { reinit_over_native: reinit && nativeSeconds ? reinit / nativeSeconds : null, reinit_over_raw: reinit && raw ? reinit / raw : null },
            goal_met: reinit !== undefined ? reinit < goalSeconds : null,
            failed: failed.map((r) => r.variant),
          }),
        );
        if (failed.length) throw new Error(`reinit bench FAILED: ${failed.map((r) => `${r.variant} (${r.check}${r.error ? `: ${r.error}` : ''})`).join('; ')}`);
      } finally {
        await pair.agent.stop();
        agents.delete(pair.agent);
        if (native) {
          await dropReplicationObjects([
            { ...native.target, cluster: own.clusters.target },
            { ...native.source, cluster: own.clusters.source },
          ]);
        }
      }
    });
  },
};

export default bench;
