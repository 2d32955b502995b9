// npm run bench -- init [--mb 520] [--rounds 2]: snapshot init through
// steep-repl (agent, progress, catch-up) against a bare CREATE SUBSCRIPTION
// ... WITH (copy_data = true) waiting for every table ready, side by side on
// the same clusters and dataset; progress-notification latency; cancel to
// clean. Runs on clusters of its own.
import { spawn, ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { Client, escapeIdentifier } from 'pg';
import createSubscriber from 'pg-listen';
import { claimRunDir, Cluster, clusterRoot, createCluster, removeRun } from '../lib/embedded-cluster';
import { packageRoot } from '../lib/paths';
import { Benchmark } from './run';

const smallTables = 20;

function arg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

async function sql(url: string, text: string, params: unknown[] = []): Promise<any[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, params)).rows;
  } finally {
    await client.end();
  }
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

function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(packageRoot, 'bin', 'run.js'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

// A running agent, as a DBA has one: the measurement starts once it is up.
async function startAgent(url: string): Promise<ChildProcess> {
  const agent = spawn(process.execPath, [path.join(packageRoot, 'bin', 'run.js'), 'agent', '--db', url], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    agent.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('"agent.started"')) resolve();
    });
    agent.once('exit', (code) => reject(new Error(`agent exited with ${code}: ${out}`)));
  });
  agent.stdout!.resume();
  return agent;
}

// An agent that already exited (it failed mid-run) emits no 'exit' again.
async function stopAgent(agent: ChildProcess): Promise<void> {
  if (agent.exitCode !== null || agent.signalCode !== null) return;
  const exited = new Promise((r) => agent.once('exit', r));
  agent.kill('SIGTERM');
  await exited;
}

async function until(probe: () => Promise<boolean>, everyMs: number, timeoutMs = 30 * 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function freshTarget(cluster: Cluster, name: string, install: boolean): Promise<string> {
  await sql(cluster.url(), `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await sql(cluster.url(), `CREATE DATABASE ${name}`);
  const url = cluster.url(name);
  if (install) {
    const r = await cli(['install', '--db', url]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  await sql(url, schemaSql);
  return url;
}

async function bareRun(source: Cluster, target: Cluster, round: number): Promise<number> {
  const url = await freshTarget(target, `bare_${round}`, false);
  const pub = `bare_pub_${round}`;
  await sql(source.url('bench_src'), `CREATE PUBLICATION ${pub} FOR TABLE big, ${Array.from({ length: smallTables }, (_, i) => `small_${i}`).join(', ')}`);
  const started = Date.now();
  await sql(
    url,
    `CREATE SUBSCRIPTION bare_sub_${round} CONNECTION 'host=127.0.0.1 port=${source.port} dbname=bench_src user=postgres' PUBLICATION ${pub} WITH (copy_data = true)`,
  );
  await until(async () => (await sql(url, "SELECT count(*) FILTER (WHERE srsubstate <> 'r')::int AS n FROM pg_subscription_rel"))[0].n === 0, 100);
  const seconds = (Date.now() - started) / 1000;
  await sql(url, `DROP SUBSCRIPTION bare_sub_${round}`);
  await sql(source.url('bench_src'), `DROP PUBLICATION ${pub}`);
  await sql(target.url(), `DROP DATABASE bare_${round} WITH (FORCE)`);
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

async function registerPair(sourceUrl: string, targetUrl: string, source: Cluster, target: Cluster, targetDb: string): Promise<void> {
  const register = "SELECT steep_repl.register_node($1, '127.0.0.1', $2, $3, 'postgres', 50, NULL, $4)";
  await sql(targetUrl, register, [targetDb, target.port, targetDb, true]);
  await sql(targetUrl, register, ['bench_src', source.port, 'bench_src', false]);
  await sql(sourceUrl, 'DELETE FROM steep_repl.nodes WHERE node_id = $1', [targetDb]);
  await sql(sourceUrl, register, [targetDb, target.port, targetDb, false]);
}

// Follows one init over pg-listen: state changes and progress rows.
async function follow(url: string, node: string, onProgress: (payload: any, receivedAt: number) => void) {
  const listener = createSubscriber({ connectionString: url });
  listener.events.on('error', () => undefined);
  const states: string[] = [];
  const reachedAt: Record<string, number> = {};
  let waiter: (() => void) | undefined;
  listener.notifications.on('steep_repl_state', (p) => {
    if (p.node_id !== node) return;
    states.push(p.to);
    reachedAt[p.to] = Date.now();
    waiter?.();
  });
  listener.notifications.on('steep_repl_progress', (p) => p.node_id === node && onProgress(p, Date.now()));
  await listener.connect();
  await listener.listenTo('steep_repl_state');
  await listener.listenTo('steep_repl_progress');
  return {
    reached: (state: string) =>
      new Promise<void>((resolve) => {
        waiter = () => states.includes(state) && resolve();
        waiter();
      }),
    reachedAt,
    close: () => listener.close(),
  };
}

async function steepRun(source: Cluster, target: Cluster, round: number): Promise<SteepRun> {
  const name = `steep_${round}`;
  const url = await freshTarget(target, name, true);
  await registerPair(source.url('bench_src'), url, source, target, name);
  const agent = await startAgent(url);
  try {
    const latencies: number[] = [];
    const arrivals: number[] = [];
    const following = await follow(url, name, (p, at) => {
      latencies.push(at - new Date(p.updated_at).getTime());
      if (p.phase === 'copying') arrivals.push(at);
    });
    const started = Date.now();
    await sql(url, 'SELECT steep_repl.start_init($1, $2)', [name, 'bench_src']);
    await following.reached('synchronized');
    const seconds = (Date.now() - started) / 1000;
    await following.close();
    const intervals = arrivals.slice(1).map((at, i) => at - arrivals[i]);
    const at = following.reachedAt;
    const phases: [number, number, number] = [
      (at.copying - started) / 1000,
      (at.catching_up - at.copying) / 1000,
      (at.synchronized - at.catching_up) / 1000,
    ];
    return { seconds, phases, latencies, intervals };
  } finally {
    await stopAgent(agent);
    // Leave the source as it was: no publication or slot of this round.
    await sql(url, 'SELECT subname FROM pg_subscription').then(async (subs) => {
      for (const s of subs) await sql(url, `DROP SUBSCRIPTION ${escapeIdentifier(s.subname)}`);
    });
    await sql(source.url('bench_src'), 'SELECT pubname FROM pg_publication').then(async (pubs) => {
      for (const p of pubs) await sql(source.url('bench_src'), `DROP PUBLICATION ${escapeIdentifier(p.pubname)}`);
    });
    await sql(target.url(), `DROP DATABASE ${name} WITH (FORCE)`);
  }
}

async function cancelRun(source: Cluster, target: Cluster): Promise<{ seconds: number; atPercent: number; left: number }> {
  const name = 'steep_cancel';
  const url = await freshTarget(target, name, true);
  await registerPair(source.url('bench_src'), url, source, target, name);
  const agent = await startAgent(url);
  try {
    let percent = 0;
    const following = await follow(url, name, (p) => (percent = Number(p.overall_percent)));
    await sql(url, 'SELECT steep_repl.start_init($1, $2)', [name, 'bench_src']);
    await until(async () => percent >= 20, 50);
    const atPercent = percent;
    const started = Date.now();
    await sql(url, 'SELECT steep_repl.cancel_init($1)', [name]);
    await following.reached('uninitialized');
    const seconds = (Date.now() - started) / 1000;
    await following.close();
    const [{ n: subs }] = await sql(url, 'SELECT count(*)::int AS n FROM pg_subscription');
    const [{ n: slots }] = await sql(source.url('bench_src'), 'SELECT count(*)::int AS n FROM pg_replication_slots');
    const [{ n: pubs }] = await sql(source.url('bench_src'), 'SELECT count(*)::int AS n FROM pg_publication');
    const [{ n: rows }] = await sql(url, 'SELECT (SELECT count(*) FROM big) + (SELECT count(*) FROM small_0) AS n');
    return { seconds, atPercent, left: subs + slots + pubs + Number(rows) };
  } finally {
    await stopAgent(agent);
    await sql(target.url(), `DROP DATABASE ${name} WITH (FORCE)`);
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
    const runDir = claimRunDir(clusterRoot('bench-init'));
    try {
      const [source, target] = await Promise.all([createCluster(path.join(runDir, 'source')), createCluster(path.join(runDir, 'target'))]);
      await sql(source.url(), 'CREATE DATABASE bench_src');
      const sourceUrl = source.url('bench_src');
      const installed = await cli(['install', '--db', sourceUrl]);
      if (installed.code !== 0) throw new Error(installed.stderr);
      await sql(sourceUrl, "SELECT steep_repl.register_node('bench_src', '127.0.0.1', $1, 'bench_src', 'postgres', 50, NULL, true)", [source.port]);
      await sql(sourceUrl, schemaSql);
      const generating = Date.now();
      for (const statement of dataSql(megabytes)) await sql(sourceUrl, statement);
      await sql(sourceUrl, 'VACUUM ANALYZE');
      const [{ bytes, big }] = await sql(
        sourceUrl,
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
      await removeRun(runDir);
    }
  },
};

export default bench;
