// npm run bench -- manual [--mb 600] [--jobs 2] [--logs dir]: what
// steep-repl's own steps of a manual init from pg_dump cost next to the dump
// and restore themselves, on a PostgreSQL 15 pair of its own (Debian's
// binaries: pg_dump refuses a newer server). steep-repl: node prepare (the
// slot and its exported snapshot, until it printed the next steps), the
// printed pg_dump and pg_restore, node complete (until synchronized, through
// the target's agent). Baseline, side by side on the same clusters and data:
// the same pg_dump without --snapshot and the same pg_restore into a plain
// database. Goal: prepare + complete under 5 % of the whole. Each target is
// checked (row count and a sum of row hashes per table). The target cluster
// is warmed up first (its WAL segments made). See docs/bench.md.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { conninfo } from '../cli/backup-commands';
import { Cluster } from '../lib/embedded-cluster';
import { createDatabase, dropDatabase, query } from '../test/support/clusters';
import { backupDir, printedCommand, runPrintedOk } from '../test/support/backups';
import { createNodeDb, dropReplicationObjects, registerPair } from '../test/support/node-pair';
import { AgentProcess, CliRun, runCli, startCli } from '../test/support/processes';
import { waitUntil } from '../test/support/wait';
import { Benchmark } from './run';
import { attempt, errorLine, RoundResult, withBenchClusters } from './support-run';
import { bigTable, buildDataset, contentSums, Dataset, differences, generate, MiB, numberArg, schemaSql, smallTable, stringArg } from './support-copy';

const smallTables = 10;
const agents = new Set<AgentProcess>();

interface Result extends RoundResult {
  // seconds of each step
  steps: Record<string, number>;
  // steep-repl's own steps over the whole
  overhead?: number;
}

const seconds = (from: number) => (Date.now() - from) / 1000;

async function timed<T>(steps: Record<string, number>, name: string, step: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const value = await step();
  steps[name] = seconds(t0);
  return value;
}

// The checked content of a target against the source's.
async function check(data: Dataset, url: string): Promise<Pick<Result, 'check' | 'error'>> {
  const bad = differences(data.sums, await contentSums(url, data.tables.map((t) => t.name)));
  return { check: bad.length ? 'MISMATCH' : 'ok', error: bad.join('; ') || undefined };
}

// node prepare until it printed the next steps (it then holds the snapshot).
async function prepared(run: CliRun): Promise<string> {
  return waitUntil(
    'node prepare to print the next steps',
    () => {
      if (run.child.exitCode !== null) throw new Error(`node prepare exited ${run.child.exitCode}: ${run.stderr}`);
      return /^\s*pg_restore /m.test(run.stdout) && /steep-repl node complete/.test(run.stdout) && run.stdout;
    },
    120_000,
    50,
  );
}

async function steepRun(data: Dataset, targetCluster: Cluster, work: string, jobs: number, logDir?: string): Promise<{ result: Result; dump: string; restore: string }> {
  const target = await createNodeDb(targetCluster, 'bench_man_tgt', 'bench_man_tgt', { installer: 'cli' });
  const steps: Record<string, number> = {};
  let prepare: CliRun | undefined;
  let agent: AgentProcess | undefined;
  try {
    await registerPair(target, data.source);
    agent = await AgentProcess.start(target.url);
    agents.add(agent);
    const dumpDir = path.join(work, 'steep');
    const printed = await timed(steps, 'prepare', async () => {
      prepare = startCli(['node', 'prepare', target.id, '--from', data.source.id, '--for', 'pg_dump', '--dump-dir', dumpDir, '--jobs', String(jobs), '--db', target.url]);
      return prepared(prepare);
    });
    const dump = printedCommand(printed, 'pg_dump');
    const restore = printedCommand(printed, 'pg_restore');
    await timed(steps, 'pg_dump', () => runPrintedOk(dump, work));
    await timed(steps, 'pg_restore', () => runPrintedOk(restore, work));
    const complete = await timed(steps, 'complete', () => runCli(['node', 'complete', target.id, '--db', target.url]));
    if (complete.code !== 0) throw new Error(`node complete exited ${complete.code}: ${complete.stderr}`);
    await prepare!.result;
    const ownSteps = steps.prepare + steps.complete;
    const total = ownSteps + steps.pg_dump + steps.pg_restore;
    if (logDir) {
      fs.mkdirSync(logDir, { recursive: true });
      fs.writeFileSync(path.join(logDir, 'target-agent.log'), agent.raw.join('\n') + '\n');
    }
    return { result: { variant: 'steep-repl', seconds: total, steps, overhead: ownSteps / total, ...(await check(data, target.url)) }, dump, restore };
  } finally {
    prepare?.child.kill('SIGTERM');
    if (agent) await agent.stop('SIGKILL');
    await dropReplicationObjects([{ ...target, cluster: targetCluster }, data.source]);
  }
}

// The same pg_dump without the snapshot, the same pg_restore into a plain database.
async function bareRun(data: Dataset, cluster: Cluster, work: string, printed: { dump: string; restore: string }): Promise<Result> {
  const steps: Record<string, number> = {};
  const db = await createDatabase(cluster, 'bench_man_bare');
  try {
    const dumpDir = path.join(work, 'bare');
    const dump = printed.dump.replace(/ --snapshot=\S+/, '').replace(/ --file=('[^']*'|\S+)/, ` --file=${dumpDir}`);
    const restore = printed.restore
      .replace(/ --dbname=('[^']*'|\S+)/, ` --dbname='${conninfo({ host: cluster.host, port: cluster.port, dbname: db.name, user: cluster.user })}'`)
      .replace(/ ('[^']*'|\S+)$/, ` ${dumpDir}`);
    await timed(steps, 'pg_dump', () => runPrintedOk(dump, work));
    await timed(steps, 'pg_restore', () => runPrintedOk(restore, work));
    return { variant: 'bare pg_dump + pg_restore', seconds: steps.pg_dump + steps.pg_restore, steps, ...(await check(data, db.url)) };
  } finally {
    await dropDatabase(cluster, db.name);
  }
}

const describe = (r: Result) =>
  `${r.variant.padEnd(26)} ${r.seconds?.toFixed(1).padStart(7) ?? '      -'} s  ${Object.entries(r.steps)
    .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
    .join(', ')}${r.overhead !== undefined ? `  (own steps ${(r.overhead * 100).toFixed(1)} %)` : ''}  check ${r.check}${r.error ? `: ${r.error}` : ''}`;

const bench: Benchmark = {
  description: 'manual init from pg_dump: node prepare + node complete around the dump and restore, next to the bare dump and restore (PostgreSQL 15 pair)',
  async run(args) {
    const megabytes = numberArg(args, 'mb', 600);
    const jobs = numberArg(args, 'jobs', 2);
    const logDir = stringArg(args, 'logs');
    await withBenchClusters(
      'manual',
      agents,
      async (own) => {
        const tables = [bigTable('big', megabytes * 0.8), ...Array.from({ length: smallTables }, (_, i) => smallTable(`small_${i}`, (megabytes * 0.2) / smallTables))];
        const data = await buildDataset(own.clusters.source, 'bench_man_src', tables);
        // Untimed: the first big write into the target cluster makes its WAL
        // segments (later ones recycle them); the first restore would pay for it alone.
        const warming = Date.now();
        const scratch = await createDatabase(own.clusters.target, 'bench_man_warm');
        await query(scratch.url, schemaSql(tables));
        await generate(scratch.url, tables);
        await dropDatabase(own.clusters.target, scratch.name);
        console.log(`warm-up (the same tables written into the target cluster, untimed): ${seconds(warming).toFixed(1)} s`);
        const work = backupDir(own.runDir);
        const results: Result[] = [];
        let printed: { dump: string; restore: string } | undefined;
        await attempt(
          results,
          async () => {
            const run = await steepRun(data, own.clusters.target, work, jobs, logDir);
            printed = run;
            return run.result;
          },
          (err) => ({ variant: 'steep-repl', steps: {}, check: 'error', error: errorLine(err) }),
          describe,
        );
        await attempt(
          results,
          async () => {
            if (!printed) throw new Error('no printed commands: the steep-repl run failed');
            return bareRun(data, own.clusters.target, work, printed);
          },
          (err) => ({ variant: 'bare pg_dump + pg_restore', steps: {}, check: 'error', error: errorLine(err) }),
          describe,
        );
        const [steep, bare] = results;
        if (steep.seconds && bare.seconds) {
          console.log('');
          console.log(
            `${(data.bytes / MiB).toFixed(0)} MB, --jobs ${jobs}: steep-repl's own steps (prepare ${steep.steps.prepare.toFixed(1)} s + complete ${steep.steps.complete.toFixed(1)} s) ` +
              `are ${(steep.overhead! * 100).toFixed(1)} % of its ${steep.seconds.toFixed(1)} s (goal < 5 %); whole vs bare ${(steep.seconds / bare.seconds).toFixed(2)}x; ` +
              `its dump + restore vs bare ${((steep.steps.pg_dump + steep.steps.pg_restore) / bare.seconds).toFixed(2)}x`,
          );
        }
        console.log(JSON.stringify({ megabytes: data.bytes / MiB, jobs, results }));
      },
      { versions: { source: 15, target: 15 } },
    );
  },
};

export default bench;
