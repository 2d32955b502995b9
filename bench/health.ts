// npm run bench -- health [--subscriptions 10] [--seconds 60] [--logs DIR]:
// what watching replication costs the servers. One target node with
// --subscriptions steep-repl subscriptions, each from a source node of its
// own (a database on the other cluster, registered, its publication and
// slot named replication_name(source, target)); the target's agent runs at
// the default interval (5 s) for --seconds, three times side by side:
// with the watch off (heartbeat and job polling only: the baseline), with
// the watch on, and with the watch on and /metrics scraped every 15 s. Measured:
// transactions per second in the target database (pg_stat_database
// xact_commit: only the agent works there), the watch's queries per second
// on the target and on the sources (from its health.round debug lines),
// and the server CPU of the agent's backends
// (/proc/<pid>/stat utime + stime of the pids pg_stat_activity lists with
// application_name LIKE 'steep-repl agent%', sampled every second) as % of
// one core; the agent process's own CPU beside it. Goal: the watch's own
// sessions (health and probes) under 1 % of one core.
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as http from 'node:http';
import { Cluster, freePort } from '../lib/embedded-cluster';
import { nodeConninfo } from '../lib/connection';
import { query } from '../test/support/clusters';
import { createNodeDb, NodeDb, registerPair } from '../test/support/node-pair';
import { AgentProcess } from '../test/support/processes';
import { waitUntil } from '../test/support/wait';
import { Benchmark } from './run';
import { numberArg, stringArg } from './support-copy';
import { withBenchClusters } from './support-run';
import { missingFunctions, saveAgentLog } from './support-synced';

const agents = new Set<AgentProcess>();
const goalPercent = 1;
const scrapeEveryMs = 15_000;
const ticksPerSecond = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

type Variant = 'watch off' | 'watch on' | 'watch on + /metrics';

interface Figures {
  variant: Variant;
  seconds: number;
  // transactions per second in the target database (every session of the agent)
  target_tps: number;
  // the watch's queries per second, from its health.round lines: on the
  // target, and on all the sources together
  watch_qps: number;
  source_qps: number;
  rounds: number;
  round_ms_max: number;
  // autovacuum and autoanalyze runs in the target database in the window
  autovacuums: number;
  // % of one core
  cpu_agent_sessions: number;
  cpu_watch_sessions: number;
  cpu_agent_process: number;
  sessions: number;
  by_application: Record<string, { sessions: number; cpu_percent: number }>;
  scrapes: number;
  degraded: string[];
}

// CPU ticks (utime + stime) of a process; undefined once it is gone.
function ticks(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the fields after the command name, which may hold spaces and parentheses
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

interface Backend {
  pid: number;
  application_name: string;
}

const agentBackendsSql = "SELECT pid, application_name FROM pg_stat_activity WHERE application_name LIKE 'steep-repl agent%'";

// Per backend the ticks at its first and latest sample: a session that
// ends between samples keeps what it used until its last one.
class CpuSampler {
  private readonly seen = new Map<string, { app: string; first: number; last: number }>();
  private agentFirst?: number;
  private agentLast?: number;

  constructor(
    private readonly clusters: Cluster[],
    private readonly agentPid: number,
  ) {}

  async sample(): Promise<void> {
    for (const cluster of this.clusters) {
      const backends = await query<Backend>(cluster.url(), agentBackendsSql);
      for (const b of backends) {
        const t = ticks(b.pid);
        if (t === undefined) continue;
        const key = `${cluster.port}:${b.pid}`;
        const known = this.seen.get(key);
        // a backend first seen now started within the last second: its ticks count from 0
        if (known) known.last = t;
        else this.seen.set(key, { app: b.application_name, first: this.agentFirst === undefined ? t : 0, last: t });
      }
    }
    const t = ticks(this.agentPid);
    if (t !== undefined) {
      this.agentFirst ??= t;
      this.agentLast = t;
    }
  }

  percent(seconds: number, which: (app: string) => boolean): number {
    let used = 0;
    for (const s of this.seen.values()) if (which(s.app)) used += s.last - s.first;
    return (100 * used) / ticksPerSecond / seconds;
  }

  agentPercent(seconds: number): number {
    return (100 * ((this.agentLast ?? 0) - (this.agentFirst ?? 0))) / ticksPerSecond / seconds;
  }

  // sessions and % of one core by application_name
  byApplication(seconds: number): Record<string, { sessions: number; cpu_percent: number }> {
    const out: Record<string, { sessions: number; cpu_percent: number }> = {};
    for (const s of this.seen.values()) {
      const a = (out[s.app] ??= { sessions: 0, cpu_percent: 0 });
      a.sessions += 1;
      a.cpu_percent += (100 * (s.last - s.first)) / ticksPerSecond / seconds;
    }
    return out;
  }

  get sessions(): number {
    return this.seen.size;
  }
}

// autovacuum and autoanalyze runs on the target database's tables so far
async function autovacuumRuns(url: string): Promise<number> {
  const [{ n }] = await query(url, 'SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0)::int AS n FROM pg_stat_all_tables');
  return n;
}

async function xactCommits(cluster: Cluster, names: string[]): Promise<number> {
  const [{ n }] = await query(cluster.url(), 'SELECT coalesce(sum(xact_commit), 0)::float8 AS n FROM pg_stat_database WHERE datname = ANY ($1)', [names]);
  return n;
}

function scrape(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function measure(
  variant: Variant,
  target: NodeDb,
  sources: NodeDb[],
  seconds: number,
  logDir: string | undefined,
): Promise<Figures> {
  const args = variant === 'watch off' ? ['--no-health-watch'] : [];
  const port = variant === 'watch on + /metrics' ? await freePort() : undefined;
  if (port) args.push('--metrics-port', String(port));
  // debug: the watch's health.round lines (the same level in every variant)
  const agent = await AgentProcess.start(target.url, args, { STEEP_REPL_LOG_LEVEL: 'debug' });
  agents.add(agent);
  try {
    if (variant !== 'watch off') {
      // the first round has run for every subscription
      await waitUntil(
        'the watch to observe every subscription',
        async () => {
          const [{ n }] = await query(target.url, "SELECT count(*)::int AS n FROM steep_repl.replication_health WHERE kind = 'subscription'");
          return n === sources.length;
        },
        30_000,
        200,
      );
    }
    // sessions connected, the first rounds behind
    await sleep(6000);
    const sampler = new CpuSampler([target.cluster, sources[0].cluster], agent.pid);
    const before = await xactCommits(target.cluster, [target.name]);
    const vacuumsBefore = await autovacuumRuns(target.url);
    await sampler.sample();
    const t0 = Date.now();
    let scrapes = 0;
    let nextScrape = t0;
    while (Date.now() - t0 < seconds * 1000) {
      if (port && Date.now() >= nextScrape) {
        const status = await scrape(`http://127.0.0.1:${port}/metrics`);
        if (status !== 200) throw new Error(`GET /metrics answered ${status}`);
        scrapes += 1;
        nextScrape += scrapeEveryMs;
      }
      await sleep(1000);
      await sampler.sample();
    }
    const elapsed = (Date.now() - t0) / 1000;
    // a busy backend reports its counts about once a second; a session that
    // runs a query every few seconds may hold them back for up to a minute,
    // so the watch's own queries are counted from its log instead
    const after = await xactCommits(target.cluster, [target.name]);
    const autovacuums = (await autovacuumRuns(target.url)) - vacuumsBefore;
    const t1 = Date.now();
    const rounds = agent.lines.filter((l) => l.event === 'health.round' && Date.parse(String(l.ts)) >= t0 && Date.parse(String(l.ts)) < t1);
    const degraded =
      variant === 'watch off'
        ? []
        : (await query(target.url, "SELECT format('%s %s: %s', kind, name, reason) AS d FROM steep_repl.replication_health WHERE status <> 'healthy' ORDER BY kind, name")).map(
            (r) => r.d,
          );
    if (logDir) saveAgentLog(`${logDir}/${variant.replace(/[^a-z]+/g, '-')}`, agent);
    return {
      variant,
      seconds: elapsed,
      target_tps: (after - before) / elapsed,
      watch_qps: rounds.reduce((n, l) => n + Number(l.queries), 0) / elapsed,
      source_qps: rounds.reduce((n, l) => n + Number(l.source_queries), 0) / elapsed,
      rounds: rounds.length,
      autovacuums,
      round_ms_max: Math.max(0, ...rounds.map((l) => Number(l.duration_ms))),
      cpu_agent_sessions: sampler.percent(elapsed, () => true),
      cpu_watch_sessions: sampler.percent(elapsed, (app) => app.startsWith('steep-repl agent health')),
      cpu_agent_process: sampler.agentPercent(elapsed),
      sessions: sampler.sessions,
      by_application: sampler.byApplication(elapsed),
      scrapes,
      degraded,
    };
  } finally {
    await agent.stop();
    agents.delete(agent);
  }
}

// Source i: a table of its own, a few rows, its publication; the target
// subscribes to it as the pair's subscription (its slot named so too).
async function buildSources(target: NodeDb, sourceCluster: Cluster, count: number): Promise<NodeDb[]> {
  const sources: NodeDb[] = [];
  for (let i = 1; i <= count; i++) {
    const source = await createNodeDb(sourceCluster, `bench_health_src${i}`, `health_src_${i}`, { installer: 'cli' });
    const table = `public.items_${i}`;
    const ddl = `CREATE TABLE ${table} (id bigint PRIMARY KEY, v text NOT NULL)`;
    await query(source.url, `${ddl}; INSERT INTO ${table} SELECT g, md5(g::text) FROM generate_series(1, 1000) g`);
    await query(target.url, ddl);
    await registerPair(target, source);
    const [{ name }] = await query(source.url, 'SELECT steep_repl.replication_name($1, $2) AS name', [source.id, target.id]);
    await query(source.url, `CREATE PUBLICATION ${quote(name)} FOR TABLE ${table}`);
    const conninfo = nodeConninfo({ host: sourceCluster.host, port: sourceCluster.port, dbname: source.name, user: sourceCluster.user });
    await query(target.url, `CREATE SUBSCRIPTION ${quote(name)} CONNECTION '${conninfo.replace(/'/g, "''")}' PUBLICATION ${quote(name)}`);
    sources.push(source);
  }
  // every table copied: the pairs are as synchronized ones are
  await waitUntil(
    'every subscription to copy its table',
    async () => {
      const [{ n }] = await query(target.url, "SELECT count(*)::int AS n FROM pg_subscription_rel WHERE srsubstate <> 'r'");
      return n === 0;
    },
    120_000,
    250,
  );
  return sources;
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

const pct = (v: number) => `${v.toFixed(2)} %`;

const bench: Benchmark = {
  description: 'what watching replication costs: queries/s and server CPU of the agent with 10 subscriptions, watch on vs off',
  async run(args) {
    const count = numberArg(args, 'subscriptions', 10);
    const seconds = numberArg(args, 'seconds', 60);
    const logDir = stringArg(args, 'logs');
    await withBenchClusters('health', agents, async (own) => {
      const target = await createNodeDb(own.clusters.target, 'bench_health_tgt', 'health_tgt', { installer: 'cli' });
      const missing = await missingFunctions(target.url, ['observe_replication', 'replication_sources']);
      if (missing.length) throw new Error(`steep_repl.${missing.join(', ')} not installed`);
      const t0 = Date.now();
      const sources = await buildSources(target, own.clusters.source, count);
      console.log(`target ${target.id}: ${count} subscriptions from ${count} source nodes, tables copied in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      const results: Figures[] = [];
      for (const variant of ['watch off', 'watch on', 'watch on + /metrics'] as Variant[]) {
        const f = await measure(variant, target, sources, seconds, logDir);
        results.push(f);
        console.log(
          `${variant}: ${f.target_tps.toFixed(2)} xact/s in the target database; the watch: ${f.rounds} rounds (longest ${f.round_ms_max} ms), ${f.watch_qps.toFixed(2)} queries/s on the target, ${f.source_qps.toFixed(2)} on the sources; server CPU ${pct(f.cpu_agent_sessions)} (watch ${pct(f.cpu_watch_sessions)}), agent process ${pct(f.cpu_agent_process)}; ${f.sessions} sessions, ${f.autovacuums} autovacuum/analyze runs${f.scrapes ? `, ${f.scrapes} scrapes` : ''}`,
        );
      }
      const off = results[0];
      const failures: string[] = [];
      console.log('');
      console.log(
        `| variant (${count} subscriptions, ${seconds} s) | xact/s, target database | watch queries/s: target | sources (all ${count}) | server CPU, agent sessions | of which the watch's | agent process CPU |`,
      );
      console.log('|---|---|---|---|---|---|---|');
      for (const f of results) {
        const watching = f.variant !== 'watch off';
        const goal = !watching ? '' : f.cpu_watch_sessions < goalPercent ? ' ✓' : ' ✗';
        console.log(
          `| ${f.variant} | ${f.target_tps.toFixed(2)} | ${watching ? f.watch_qps.toFixed(2) : '–'} | ${watching ? f.source_qps.toFixed(2) : '–'} | ${pct(f.cpu_agent_sessions)} | ${watching ? pct(f.cpu_watch_sessions) + goal : '–'} | ${pct(f.cpu_agent_process)} |`,
        );
        if (watching && f.cpu_watch_sessions >= goalPercent) failures.push(`${f.variant}: the watch's sessions used ${pct(f.cpu_watch_sessions)} of a core`);
        if (watching && !f.rounds) failures.push(`${f.variant}: no round of the watch in the window`);
        if (f.degraded.length) failures.push(`${f.variant}: not healthy: ${f.degraded.join('; ')}`);
      }
      const on = results[1];
      console.log(
        `\nthe watch adds ${(on.target_tps - off.target_tps).toFixed(2)} xact/s in the target database and ${pct(on.cpu_agent_sessions - off.cpu_agent_sessions)} server CPU (all agent sessions, on vs off)`,
      );
      console.log(JSON.stringify({ bench: 'health', subscriptions: count, seconds, clk_tck: ticksPerSecond, results, goal_met: !failures.length, failed: failures }));
      if (failures.length) throw new Error(`health bench FAILED: ${failures.join('; ')}`);
    });
  },
};

export default bench;
