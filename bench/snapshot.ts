// npm run bench -- snapshot [--mb 1100] [--parallel 2] [--split-mb 64]
// [--max-parts 32] [--rounds 1] [--only a,b,...] [--logs dir]:
// two-phase snapshots side by side on the same clusters and dataset. On
// the source: a raw dump (COPY ... TO STDOUT of the generate's parts into
// fsynced files, over as many sessions as the generate's workers), then
// snapshot generate through the source's agent with each compression
// (none, gzip, zstd, lz4) until the snapshot is ready. On the target: a raw
// load (COPY ... FROM STDIN of the raw dump's files, the same sessions)
// into an empty database with the schema, then the two-phase apply of the
// none and the zstd snapshots through the target's agent until
// synchronized, each checked (row count and a sum of row hashes per table).
// Runs on clusters of its own. See docs/bench.md.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cluster } from '../lib/embedded-cluster';
import { Compression } from '../lib/snapshot/manifest';
import { startInit } from '../lib/sql/startInit';
import { dropDatabase, query, withClient } from '../test/support/clusters';
import { followInit, InitFollower } from '../test/support/init-follower';
import { createNodeDb, dropReplicationObjects, registerPair } from '../test/support/node-pair';
import { AgentProcess } from '../test/support/processes';
import { Benchmark } from './run';
import { attempt as attemptVariant, selectedVariants, withBenchClusters, combine, errorLine, RoundResult } from './support-run';
import {
  bigTable,
  buildDataset,
  contentSums,
  Dataset,
  differences,
  MiB,
  numberArg,
  plainTarget,
  rowCounts,
  schemaSql,
  smallTable,
  stringArg,
} from './support-copy';
import {
  agentMissing,
  DumpItem,
  dropApplyLeftovers,
  generateMissing,
  generatePhases,
  generateSnapshot,
  manifestProblems,
  planDump,
  rawDump,
  rawLoad,
  readManifest,
} from './support-snapshot';

const smallTables = 10;

// What a variant needs is not there: a feature not built yet, an earlier variant's files.
class NotThere extends Error {}
const runTimeoutMs = 60 * 60_000;

interface Result extends RoundResult {
  key: string;
  // dump and generate: the COPY streams' bytes, and as stored in the files
  raw_bytes?: number;
  stored_bytes?: number;
  parts?: number;
  // generate: setup / writing the parts / finishing; apply: each state reached, seconds after start_init
  phases?: string;
}

const compressionsRun: Compression[] = ['none', 'gzip', 'zstd', 'lz4'];
const allVariants = ['raw-dump', ...compressionsRun, 'raw-load', 'apply-none', 'apply-zstd'] as const;

// Every agent this run started, for the signal handler.
const agents = new Set<AgentProcess>();
// --logs <dir>: each agent's log goes to <dir>/<name>.log
let logDir: string | undefined;

function saveLog(agent: AgentProcess, name: string): void {
  if (!logDir) return;
  fs.mkdirSync(logDir, { recursive: true });
  fs.writeFileSync(path.join(logDir, `${name}.log`), agent.raw.join('\n') + '\n');
}

interface Context {
  data: Dataset;
  target: Cluster;
  filesDir: string;
  parallel: number;
  rule: { threshold: number; maxParts: number };
  splitOption: string;
  sourceAgent?: AgentProcess;
  round: number;
  // what earlier variants of the round left for later ones: the raw dump's
  // files, each compression's snapshot (id and directory)
  dump?: DumpItem[];
  // an earlier round's dump, for the generate's checks when this round's comes after
  lastDump?: DumpItem[];
  snapshots: Partial<Record<Compression, { id: string; dir: string }>>;
}

// The round's directory for the raw dump or a compression's snapshot.
const roundDir = (ctx: Context, name: string) => path.join(ctx.filesDir, `round${ctx.round}`, name);

async function rawDumpRun(ctx: Context): Promise<Result> {
  const dir = roundDir(ctx, 'raw');
  const items = await planDump(ctx.data.source.url, ctx.data.tables.map((t) => t.name), ctx.rule, dir);
  const { seconds, bytes } = await rawDump(ctx.data.source.url, items, ctx.parallel);
  ctx.dump = items;
  const formats = [...new Set(items.map((i) => i.plan.format))].join('/');
  return {
    key: 'raw-dump',
    variant: `raw dump (${formats})`,
    seconds,
    mb_per_s: ctx.data.bytes / MiB / seconds,
    raw_bytes: bytes,
    stored_bytes: bytes,
    parts: items.length,
    check: 'ok',
  };
}

async function generateRun(ctx: Context, compression: Compression): Promise<Result> {
  const missing = await generateMissing(ctx.data.source.url, ctx.sourceAgent);
  if (missing) throw new NotThere(missing);
  const dir = roundDir(ctx, compression);
  const options = { parallel: ctx.parallel, compression, split_tables_larger_than: ctx.splitOption, max_parts: ctx.rule.maxParts };
  const generated = await generateSnapshot(ctx.data.source.url, ctx.sourceAgent!, dir, options, runTimeoutMs);
  const seconds = (generated.ready - generated.started) / 1000;
  ctx.snapshots[compression] = { id: generated.snapshot_id, dir };
  const manifest = readManifest(dir);
  const phases = await generatePhases(ctx.data.source.url, generated.snapshot_id);
  const problems = manifestProblems(dir, manifest, ctx.data.counts, ctx.dump ?? ctx.lastDump);
  if (problems.length) console.error(`MISMATCH after generate ${compression}: ${problems.join('; ')}`);
  return {
    key: compression,
    variant: `generate ${compression}`,
    seconds,
    mb_per_s: ctx.data.bytes / MiB / seconds,
    raw_bytes: manifest.totals.raw_bytes,
    stored_bytes: manifest.totals.stored_bytes,
    parts: manifest.totals.parts,
    phases: phases && `setup ${phases.setup.toFixed(2)} s, parts ${phases.write.toFixed(2)} s, finish ${phases.finish.toFixed(2)} s`,
    check: problems.length ? 'MISMATCH' : 'ok',
    error: problems.join('; ') || undefined,
  };
}

async function rawLoadRun(ctx: Context): Promise<Result> {
  if (!ctx.dump) throw new NotThere('needs the raw dump (not run or failed)');
  const db = await plainTarget(ctx.target, 'raw_load', ctx.data);
  try {
    const seconds = await rawLoad(db.url, ctx.dump, ctx.parallel);
    const bad = differences(ctx.data.counts, await rowCounts(db.url, Object.keys(ctx.data.counts)));
    if (bad.length) console.error(`MISMATCH after raw load: ${bad.join('; ')}`);
    return {
      key: 'raw-load',
      variant: 'raw load',
      seconds,
      mb_per_s: ctx.data.bytes / MiB / seconds,
      parts: ctx.dump.length,
      check: bad.length ? 'MISMATCH' : 'counts ok',
      error: bad.join('; ') || undefined,
    };
  } finally {
    await dropDatabase(ctx.target, db.name);
  }
}

async function applyRun(ctx: Context, compression: Compression): Promise<Result> {
  const dir = ctx.snapshots[compression]?.dir;
  if (!dir) throw new NotThere(`needs the ${compression} snapshot (its generate did not run or failed)`);
  const { data } = ctx;
  // a source registry keeps the row of a node it knows: a new id each round
  const id = `apply_${compression}_r${ctx.round}`;
  const target = await createNodeDb(ctx.target, id, id, { installer: 'cli' });
  let agent: AgentProcess | undefined;
  let following: InitFollower | undefined;
  try {
    await query(target.url, schemaSql(data.tables));
    await registerPair(target, data.source);
    // A running agent, as a DBA has one: the measurement starts once it is up.
    agent = await AgentProcess.start(target.url);
    agents.add(agent);
    const missing = agentMissing(agent, 'init_two_phase');
    if (missing) throw new NotThere(missing);
    following = await followInit(target.url, target.id);
    const started = Date.now();
    await withClient(target.url, (client) =>
      startInit(client, { target: target.id, source: data.source.id, method: 'two-phase', options: { snapshot: dir, parallel: ctx.parallel } }),
    );
    const synchronizedAt = await following.reached('synchronized', runTimeoutMs);
    const seconds = (synchronizedAt - started) / 1000;
    // the check of every file's sha256 before anything changes, as the agent logs it
    const verify = agent.lines.find((l) => l.event === 'init.snapshot_verified')?.seconds;
    const states = following.states.map((s) => `${s.payload.to} +${((s.at - started) / 1000).toFixed(2)}`).join(', ');
    const phases = typeof verify === 'number' ? `verify ${verify.toFixed(2)} s; ${states}` : states;
    const parts = await query(target.url, 'SELECT count(*)::int AS n FROM steep_repl.init_parts WHERE node_id = $1', [target.id]).then(
      (rows) => rows[0]?.n,
      () => undefined,
    );
    const bad = differences(data.sums, await contentSums(target.url, Object.keys(data.sums)));
    if (bad.length) console.error(`MISMATCH after apply ${compression}: ${bad.join('; ')}`);
    return {
      key: `apply-${compression}`,
      variant: `apply ${compression}`,
      seconds,
      mb_per_s: data.bytes / MiB / seconds,
      parts,
      phases,
      check: bad.length ? 'MISMATCH' : 'ok',
      error: bad.join('; ') || undefined,
    };
  } finally {
    await following?.close();
    if (agent) {
      saveLog(agent, id);
      await agent.stop();
      agents.delete(agent);
    }
    // The target's subscription goes with the copied slot; the snapshots' slots stay for the next apply.
    await dropReplicationObjects([target]);
    await dropApplyLeftovers(data.source.url);
    await dropDatabase(ctx.target, target.name);
  }
}

const mb = (bytes: number | undefined) => (bytes === undefined ? '–' : (bytes / MiB).toFixed(1));

function describe(r: Result): string {
  const parts = [r.variant.padEnd(22)];
  if (r.seconds !== undefined) parts.push(`${r.seconds.toFixed(2).padStart(8)} s  ${r.mb_per_s!.toFixed(1).padStart(6)} MB/s`);
  if (r.raw_bytes !== undefined) parts.push(`raw ${mb(r.raw_bytes)} MB, stored ${mb(r.stored_bytes)} MB (${(r.raw_bytes / r.stored_bytes!).toFixed(2)}:1)`);
  if (r.parts !== undefined) parts.push(`${r.parts} parts`);
  if (r.phases) parts.push(`(${r.phases})`);
  parts.push(r.check);
  if (r.error) parts.push(r.error);
  if (r.load !== undefined) parts.push(`load ${r.load.toFixed(2)}`);
  return parts.join('  ');
}

// Runs one variant; a failure is recorded, and the others still run.
function attempt(key: string, variant: string, results: Result[], run: () => Promise<Result>, prefix = ''): Promise<void> {
  const failed = (err: Error): Result => {
    // a feature not built yet, a variant that needs one that failed: the line says it
    if (!(err instanceof NotThere)) console.error(`${variant} failed:`, err);
    return { key, variant, check: 'error', error: errorLine(err) };
  };
  return attemptVariant(results, run, failed, describe, prefix);
}

// Between rounds, untimed: the round's snapshots deleted (slot and
// publication dropped, the agent removes the files) and its raw dump
// removed, so the disk holds one round at a time.
async function endRound(ctx: Context): Promise<void> {
  for (const { id, dir } of Object.values(ctx.snapshots)) {
    await query(ctx.data.source.url, 'SELECT steep_repl.delete_snapshot($1)', [id]);
    const until = Date.now() + 120_000;
    while (fs.existsSync(dir) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  }
  fs.rmSync(path.join(ctx.filesDir, `round${ctx.round}`), { recursive: true, force: true });
  ctx.lastDump = ctx.dump ?? ctx.lastDump;
  ctx.dump = undefined;
  ctx.snapshots = {};
}

const bench: Benchmark = {
  description:
    'two-phase snapshots: raw COPY TO file dump vs snapshot generate (none, gzip, zstd, lz4); raw COPY FROM load vs two-phase apply (none, zstd): time, MB/s, sizes, ratios',
  async run(args) {
    const megabytes = numberArg(args, 'mb', 1100);
    // the generate's workers; the raw dump, the raw load and the apply use as many sessions
    const parallel = numberArg(args, 'parallel', 2);
    const splitMb = numberArg(args, 'split-mb', 64);
    const maxParts = numberArg(args, 'max-parts', 32);
    const rounds = Math.max(1, numberArg(args, 'rounds', 1));
    logDir = stringArg(args, 'logs');
    const only = selectedVariants(stringArg(args, 'only'), allVariants, allVariants);

    await withBenchClusters('snapshot', agents, async (own) => {
      const results: Result[] = [];
      // ~90% in one table with an integer key, the rest in small tables (as bench copy)
      const tables = [
        bigTable('big', megabytes * 0.9),
        ...Array.from({ length: smallTables }, (_, i) => smallTable(`small_${i}`, (megabytes * 0.1) / smallTables)),
      ];
      const data = await buildDataset(own.clusters.source, 'bench_src', tables);
      // the snapshots and the raw dump, inside the run's directory: removed with it
      const filesDir = path.join(own.runDir, 'files');
      const ctx: Context = {
        data,
        target: own.clusters.target,
        filesDir,
        parallel,
        rule: { threshold: splitMb * MiB, maxParts },
        splitOption: `${splitMb}MB`,
        round: 1,
        snapshots: {},
      };

      // Untimed: the target cluster's first load makes its WAL segments
      // (later ones recycle them) and the first files warm the disk; the
      // first variant would pay for it alone.
      const warming = Date.now();
      const warmDir = path.join(filesDir, 'warm-up');
      const warmItems = await planDump(data.source.url, tables.map((t) => t.name), ctx.rule, warmDir);
      await rawDump(data.source.url, warmItems, parallel);
      const warmDb = await plainTarget(own.clusters.target, 'warm_up', data);
      await rawLoad(warmDb.url, warmItems, parallel);
      await dropDatabase(own.clusters.target, warmDb.name);
      fs.rmSync(warmDir, { recursive: true, force: true });
      console.log(`warm-up (raw dump + raw load, untimed): ${((Date.now() - warming) / 1000).toFixed(1)} s`);

      // The source's agent, as a DBA has one running: it writes every snapshot.
      if (compressionsRun.some((c) => only.includes(c))) {
        try {
          ctx.sourceAgent = await AgentProcess.start(data.source.url);
          agents.add(ctx.sourceAgent);
        } catch (err) {
          console.error(`the source's agent did not start: ${(err as Error).message.split('\n')[0]}`);
        }
      }
      console.log(`parallel ${parallel}, split above ${splitMb} MB (at most ${maxParts} parts a table)`);
      console.log('');

      const plan: Array<[string, string, () => Promise<Result>]> = [
        ['raw-dump', 'raw dump', () => rawDumpRun(ctx)],
        ...compressionsRun.map((c): [string, string, () => Promise<Result>] => [c, `generate ${c}`, () => generateRun(ctx, c)]),
        ['raw-load', 'raw load', () => rawLoadRun(ctx)],
        ['apply-none', 'apply none', () => applyRun(ctx, 'none')],
        ['apply-zstd', 'apply zstd', () => applyRun(ctx, 'zstd')],
      ];
      const selected = plan.filter(([key]) => only.includes(key));
      const onSource = selected.filter(([key]) => key === 'raw-dump' || (compressionsRun as string[]).includes(key));
      const onTarget = selected.filter((v) => !onSource.includes(v));
      const byKey = new Map<string, Result[]>(selected.map(([key]) => [key, []]));
      for (let round = 1; round <= rounds; round++) {
        ctx.round = round;
        // Every other round in reverse order (the loads still after the
        // files they read), so no variant always runs on a warmer (or busier) server.
        const order = (group: typeof selected) => (round % 2 ? group : [...group].reverse());
        for (const [key, variant, run] of [...order(onSource), ...order(onTarget)]) {
          await attempt(key, variant, byKey.get(key)!, run, rounds > 1 ? `round ${round}  ` : '');
        }
        if (round < rounds) await endRound(ctx);
      }
      results.push(...selected.map(([key]) => combine(byKey.get(key)!)));
      if (rounds > 1) {
        console.log('');
        for (const r of results) console.log(`median of ${rounds}: ${describe(r)}`);
      }
      if (ctx.sourceAgent) {
        saveLog(ctx.sourceAgent, 'source');
        await ctx.sourceAgent.stop();
        agents.delete(ctx.sourceAgent);
      }

      // ratios as speed: the other's time over this one's (>= 1: this one is as fast or faster)
      const get = (key: string) => results.find((r) => r.key === key && r.seconds !== undefined);
      const speed = (base: Result | undefined, r: Result | undefined) => (base?.seconds && r?.seconds ? base.seconds / r.seconds : undefined);
      const smaller = (base: Result | undefined, r: Result | undefined) => (base?.stored_bytes && r?.stored_bytes ? base.stored_bytes / r.stored_bytes : undefined);
      const fmt = (v: number | undefined, goal?: number) => (v === undefined ? '' : `${v.toFixed(3)}×${goal !== undefined ? (v >= goal ? ' ✓' : ' ✗') : ''}`);
      const cell = (r: Result) => `${r.check}${r.error ? `: ${r.error}` : ''}`;
      const [dump, none, load] = [get('raw-dump'), get('none'), get('raw-load')];
      const ratios = {
        generate_none_over_raw_dump: speed(dump, none) ?? null,
        apply_none_over_raw_load: speed(load, get('apply-none')) ?? null,
        zstd_smaller_than_none: smaller(none, get('zstd')) ?? null,
        zstd_speed_over_none: speed(none, get('zstd')) ?? null,
      };

      console.log('');
      console.log(
        `dataset: ${(data.bytes / MiB).toFixed(0)} MB (pg_table_size of ${data.tables.length} tables; big: ${(data.sizes.big / MiB).toFixed(0)} MB); parallel ${parallel}; split above ${splitMb} MB`,
      );
      console.log('');
      console.log('| variant | time to ready / done | MB/s | raw MB | stored MB | raw/stored | speed vs raw dump (none: goal ≥ 0.9) | stored vs none, times smaller (zstd: goal ≥ 2) | speed vs none (zstd: goal ≥ 0.7) | check |');
      console.log('|---|---|---|---|---|---|---|---|---|---|');
      for (const r of results.filter((r) => r.key === 'raw-dump' || (compressionsRun as string[]).includes(r.key))) {
        const isGenerate = r.key !== 'raw-dump';
        const ratio = r.raw_bytes && r.stored_bytes ? `${(r.raw_bytes / r.stored_bytes).toFixed(2)}` : '';
        const vsDump = fmt(speed(dump, r), r.key === 'none' ? 0.9 : undefined);
        const vsNone = isGenerate && r.key !== 'none' ? fmt(smaller(none, r), r.key === 'zstd' ? 2 : undefined) : '';
        const speedVsNone = isGenerate && r.key !== 'none' ? fmt(speed(none, r), r.key === 'zstd' ? 0.7 : undefined) : '';
        console.log(
          `| ${r.variant} | ${r.seconds !== undefined ? `${r.seconds.toFixed(2)} s` : '–'} | ${r.mb_per_s?.toFixed(1) ?? '–'} | ${mb(r.raw_bytes)} | ${mb(r.stored_bytes)} | ${ratio} | ${vsDump} | ${vsNone} | ${speedVsNone} | ${cell(r)} |`,
        );
      }
      console.log('');
      console.log('| variant | time to synchronized / done | MB/s | speed vs raw load (apply none: goal ≥ 0.9) | check |');
      console.log('|---|---|---|---|---|');
      for (const r of results.filter((r) => r.key === 'raw-load' || r.key.startsWith('apply-'))) {
        const vsLoad = fmt(speed(load, r), r.key === 'apply-none' ? 0.9 : undefined);
        console.log(`| ${r.variant} | ${r.seconds !== undefined ? `${r.seconds.toFixed(2)} s` : '–'} | ${r.mb_per_s?.toFixed(1) ?? '–'} | ${vsLoad} | ${cell(r)} |`);
      }

      const failed = results.filter((r) => r.check === 'MISMATCH' || r.check === 'error');
      console.log(
        JSON.stringify({
          bench: 'snapshot',
          dataset_mb: data.bytes / MiB,
          big_mb: data.sizes.big / MiB,
          tables: data.tables.length,
          parallel,
          split_mb: splitMb,
          rounds,
          results,
          ratios,
          failed: failed.map((r) => r.variant),
        }),
      );
      if (failed.length) throw new Error(`snapshot bench FAILED: ${failed.map((r) => `${r.variant} (${r.check}${r.error ? `: ${r.error}` : ''})`).join('; ')}`);
    });
  },
};

export default bench;
