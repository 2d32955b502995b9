// npm run bench -- init [--mb 520] [--rounds 2]: snapshot init through
// steep-repl (agent, progress, catch-up) against a bare CREATE SUBSCRIPTION
// ... WITH (copy_data = true) waiting for every table ready, side by side on
// the same clusters and dataset; progress-notification latency; cancel to
// clean. Runs on clusters of its own.
import { Cluster } from '../lib/embedded-cluster';
import { cancelInit } from '../lib/sql/cancelInit';
import { startInit } from '../lib/sql/startInit';
import { createDatabase, dropDatabase, query, startOwnClusters, withClient } from '../test/support/clusters';
import { followInit, InitFollower } from '../test/support/init-follower';
import { createNodeDb, dropReplicationObjects, NodeDb, registerIn, registerPair } from '../test/support/node-pair';
import { AgentProcess } from '../test/support/processes';
import { waitUntil } from '../test/support/wait';
import { Benchmark } from './run';

const smallTables = 20;

function arg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

const schemaSql = [
  'CREATE TABLE big (id bigint PRIMARY KEY, created timestamptz NOT NULL, payload text NOT NULL)',
  ...Array.from({ length: smallTables }, (_, i) => `CREATE TABLE small_${i} (id int PRIMARY KEY, v text NOT NULL)`),
].join(';\n');

// ~250 bytes per big row; the small tables add ~1 MB each.
function dataSql(megabytes: number): string[] {
  const bigRows = Math.round((megabytes * 1024 * 1024 * 0.96) / 250);
  const chunk = 500_000;
  const statements: string[] = [];
  for (let from = 1; from <= bigRows; from += chunk) {
    const to = Math.min(bigRows, from + chunk - 1);
    statements.push(
      `INSERT INTO big SELECT g, now() - g * interval '1 second', md5(g::text) || repeat(md5((g * 7)::text), 6) FROM generate_series(${from}, ${to}) g`,
    );
  }
  for (let i = 0; i < smallTables; i++) {
    statements.push(`INSERT INTO small_${i} SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 10000) g`);
  }
  return statements;
}

const runTimeoutMs = 30 * 60_000;

// A target as each run gets it: a new database with the user schema, empty.
async function steepTarget(cluster: Cluster, id: string): Promise<NodeDb> {
  const target = await createNodeDb(cluster, id, id, { installer: 'cli' });
  await query(target.url, schemaSql);
  return target;
}

async function bareRun(source: NodeDb, target: Cluster, round: number): Promise<number> {
  const db = await createDatabase(target, `bare_${round}`);
  await query(db.url, schemaSql);
  const pub = `bare_pub_${round}`;
  await query(source.url, `CREATE PUBLICATION ${pub} FOR TABLE big, ${Array.from({ length: smallTables }, (_, i) => `small_${i}`).join(', ')}`);
  const started = Date.now();
  await query(
    db.url,
    `CREATE SUBSCRIPTION bare_sub_${round} CONNECTION 'host=127.0.0.1 port=${source.cluster.port} dbname=${source.name} user=postgres' PUBLICATION ${pub} WITH (copy_data = true)`,
  );
  await waitUntil(
    'every table of the bare subscription ready',
    async () => (await query(db.url, "SELECT count(*) FILTER (WHERE srsubstate <> 'r')::int AS n FROM pg_subscription_rel"))[0].n === 0,
    runTimeoutMs,
    100,
  );
  const seconds = (Date.now() - started) / 1000;
  await query(db.url, `DROP SUBSCRIPTION bare_sub_${round}`);
  await query(source.url, `DROP PUBLICATION ${pub}`);
  await dropDatabase(target, db.name);
  return seconds;
}

interface SteepRun {
  seconds: number;
  // start_init -> copying (agent pickup, schema check, publication,
  // subscription), copying -> catching_up, catching_up -> synchronized.
  phases: [number, number, number];
  latencies: number[];
  intervals: number[];
}

async function steepRun(source: NodeDb, targetCluster: Cluster, round: number): Promise<SteepRun> {
  const target = await steepTarget(targetCluster, `steep_${round}`);
  await registerPair(target, source);
  // A running agent, as a DBA has one: the measurement starts once it is up.
  const agent = await AgentProcess.start(target.url);
  let following: InitFollower | undefined;
  try {
    following = await followInit(target.url, target.id);
    const started = Date.now();
    await withClient(target.url, (client) => startInit(client, { target: target.id, source: source.id }));
    const synchronizedAt = await following.reached('synchronized', runTimeoutMs);
    const seconds = (synchronizedAt - started) / 1000;
    const latencies = following.progress.map((p) => p.at - new Date(p.payload.updated_at).getTime());
    const arrivals = following.progress.filter((p) => p.payload.phase === 'copying').map((p) => p.at);
    const intervals = arrivals.slice(1).map((at, i) => at - arrivals[i]);
    const at = (state: string) => following!.reachedAt(state)!;
    const phases: [number, number, number] = [
      (at('copying') - started) / 1000,
      (at('catching_up') - at('copying')) / 1000,
      (synchronizedAt - at('catching_up')) / 1000,
    ];
    return { seconds, phases, latencies, intervals };
  } finally {
    await following?.close();
    await agent.stop();
    // Leave the source as it was: no publication or slot of this round.
    await dropReplicationObjects([target, source]);
    await dropDatabase(targetCluster, target.name);
  }
}

async function cancelRun(source: NodeDb, targetCluster: Cluster): Promise<{ seconds: number; atPercent: number; left: number }> {
  const target = await steepTarget(targetCluster, 'steep_cancel');
  await registerPair(target, source);
  const agent = await AgentProcess.start(target.url);
  let following: InitFollower | undefined;
  try {
    following = await followInit(target.url, target.id);
    const percent = () => Number(following!.latestProgress()?.overall_percent ?? 0);
    await withClient(target.url, (client) => startInit(client, { target: target.id, source: source.id }));
    await waitUntil('the copy to pass 20%', () => percent() >= 20, runTimeoutMs, 50);
    const atPercent = percent();
    const started = Date.now();
    await withClient(target.url, (client) => cancelInit(client, target.id));
    const seconds = ((await following.reached('uninitialized')) - started) / 1000;
    const [{ n: subs }] = await query(target.url, 'SELECT count(*)::int AS n FROM pg_subscription');
    const [{ n: slots }] = await query(source.url, 'SELECT count(*)::int AS n FROM pg_replication_slots');
    const [{ n: pubs }] = await query(source.url, 'SELECT count(*)::int AS n FROM pg_publication');
    const [{ n: rows }] = await query(target.url, 'SELECT (SELECT count(*) FROM big) + (SELECT count(*) FROM small_0) AS n');
    return { seconds, atPercent, left: subs + slots + pubs + Number(rows) };
  } finally {
    await following?.close();
    await agent.stop();
    // What a failed cancel left would block DROP DATABASE.
    await dropReplicationObjects([target, source]);
    await dropDatabase(targetCluster, target.name);
  }
}

function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const bench: Benchmark = {
  description: 'snapshot init via steep-repl vs bare CREATE SUBSCRIPTION copy_data=true (time, MB/s), progress latency, cancel to clean',
  async run(args) {
    const megabytes = arg(args, 'mb', 520);
    const rounds = arg(args, 'rounds', 2);
    const own = await startOwnClusters('bench-init', ['source', 'target']);
    try {
      const { target } = own.clusters;
      const source = await createNodeDb(own.clusters.source, 'bench_src', 'bench_src', { installer: 'cli' });
      await registerIn(source, source);
      await query(source.url, schemaSql);
      const generating = Date.now();
      for (const statement of dataSql(megabytes)) await query(source.url, statement);
      await query(source.url, 'VACUUM ANALYZE');
      const [{ bytes, big }] = await query(
        source.url,
        `SELECT sum(pg_table_size(c.oid))::float8 AS bytes, pg_table_size('big')::float8 AS big
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'`,
      );
      const mb = Number(bytes) / 1024 / 1024;
      console.log(`dataset: ${mb.toFixed(0)} MB in ${smallTables + 1} tables (big: ${(Number(big) / 1024 / 1024).toFixed(0)} MB), generated in ${((Date.now() - generating) / 1000).toFixed(0)} s`);

      const bare: number[] = [];
      const steep: SteepRun[] = [];
      // Alternating order, so neither side always runs on a warmer cache.
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? ['bare', 'steep'] : ['steep', 'bare'];
        for (const which of order) {
          if (which === 'bare') bare.push(await bareRun(source, target, round));
          else steep.push(await steepRun(source, target, round));
          const last = which === 'bare' ? bare[bare.length - 1] : steep[steep.length - 1].seconds;
          const [setup, copy, finish] = which === 'steep' ? steep[steep.length - 1].phases : [0, 0, 0];
          const phases = which === 'steep' ? `  (setup ${setup.toFixed(2)} s, copy ${copy.toFixed(2)} s, catch-up + sequences ${finish.toFixed(2)} s)` : '';
          console.log(`round ${round + 1} ${which.padEnd(5)} ${last.toFixed(2)} s  ${(mb / last).toFixed(1)} MB/s${phases}`);
        }
      }
      const median = (v: number[]) => {
        const sorted = [...v].sort((a, b) => a - b);
        const mid = Math.floor(sorted.length / 2);
        return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
      };
      const bareSeconds = median(bare);
      const steepSeconds = median(steep.map((s) => s.seconds));
      const latencies = steep.flatMap((s) => s.latencies);
      const intervals = steep.flatMap((s) => s.intervals);
      const cancel = await cancelRun(source, target);

      console.log('');
      console.log('| measure | bare CREATE SUBSCRIPTION | steep-repl init |');
      console.log('|---|---|---|');
      console.log(`| time to all tables ready / synchronized (median of ${rounds}) | ${bareSeconds.toFixed(2)} s | ${steepSeconds.toFixed(2)} s |`);
      console.log(`| throughput | ${(mb / bareSeconds).toFixed(1)} MB/s | ${(mb / steepSeconds).toFixed(1)} MB/s |`);
      console.log(`| ratio steep/bare (goal <= 1.05) | | ${(steepSeconds / bareSeconds).toFixed(3)} |`);
      console.log(
        `| progress NOTIFY latency, row update -> pg-listen client (${latencies.length} notifications) | | p50 ${percentile(latencies, 50)} ms, p95 ${percentile(latencies, 95)} ms (goal p95 < 500 ms) |`,
      );
      console.log(`| interval between progress notifications while copying | | p50 ${percentile(intervals, 50)} ms, p95 ${percentile(intervals, 95)} ms |`);
      console.log(
        `| cancel to clean (cancel_init -> uninitialized, at ${cancel.atPercent.toFixed(0)}%) | | ${cancel.seconds.toFixed(2)} s (goal < 2 s), objects/rows left: ${cancel.left} |`,
      );
    } finally {
      await own.remove();
    }
  },
};

export default bench;
