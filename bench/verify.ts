// npm run bench -- verify [--mb 1100] [--rounds 1] [--only count,count-heap,md5,hashsum,verify]
// [--rows-per-range N] [--no-changed] [--explain] [--logs DIR]: steep-repl's
// verify of a node against its peer, side by side on the same pair and data
// with count(*) of the same tables on both nodes at once (the baseline; as
// planned, which after VACUUM is an index-only scan of the primary key, and
// as a heap scan), a whole-table md5(string_agg(t::text, '' ORDER BY id)) on
// both nodes at once, and sum(hash_record_extended(t, 0)) on both at once
// (one scan hashing every row: the floor of any row-hash comparison). Each
// round then changes one row of big on the target (session_replication_role
// = replica, so it does not replicate), verifies again (it must find that
// key alone, the node diverged) and puts the row back: the next round's
// equal verify takes the node back to synchronized. The time to find the
// row beyond the equal case is the difference of the medians. The pair: a
// source with the dataset and a target synchronized through a direct init,
// its agent running (verify is a job on it). --explain: one more verify,
// untimed, with auto_explain in its sessions; its statements over 50 ms and
// their plans. Goals: verify ≤ 2× count(*), the changed row found < 2 s
// beyond the equal verify.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client, escapeLiteral } from 'pg';
import { Cluster } from '../lib/embedded-cluster';
import { query } from '../test/support/clusters';
import { NodeDb } from '../test/support/node-pair';
import { AgentProcess } from '../test/support/processes';
import { Benchmark } from './run';
import { attempt, errorLine, medianOfPassed, RoundResult, selectedVariants, withBenchClusters } from './support-run';
import { bigTable, MiB, numberArg, smallTable, stringArg, TableSpec } from './support-copy';
import { missingFunctions, nodeState, pollUntil, saveAgentLog, secondsSince, synchronizedPair } from './support-synced';

const smallTables = 10;
const agents = new Set<AgentProcess>();
const verifyTimeoutMs = 60 * 60_000;
// string_agg builds one value, at most 1 GB: the md5 goes over key ranges
// of about this much table, and the table's md5 is the md5 of theirs
const md5ChunkBytes = 256 * MiB;

interface Result extends RoundResult {
  // per node (source, target): seconds of its own session
  node_seconds?: [number, number];
  // verify: the run's state, its phases as the polling saw them start
  // (seconds from start_verify), the job's own time (verify_runs.started_at
  // → finished_at) and what it found
  state?: string;
  phases?: Record<string, number>;
  job_seconds?: number;
  pickup_seconds?: number;
  ranges?: number;
  rows_compared?: number;
  found?: string;
  verify_id?: number;
}

// One statement list per node, each on its own session, both nodes at once.
// setup: session settings, untimed.
async function bothNodes(
  urls: [string, string],
  statements: (url: string) => string[],
  setup: string[] = [],
): Promise<{ seconds: number; node_seconds: [number, number]; values: string[][] }> {
  const clients = urls.map((url) => new Client({ connectionString: url }));
  await Promise.all(clients.map((c) => c.connect()));
  try {
    for (const sql of setup) await Promise.all(clients.map((c) => c.query(sql)));
    const started = Date.now();
    const perNode = await Promise.all(
      clients.map(async (client, i) => {
        const values: string[] = [];
        for (const sql of statements(urls[i])) values.push(String(Object.values((await client.query(sql)).rows[0])[0]));
        return { seconds: secondsSince(started), values };
      }),
    );
    return { seconds: secondsSince(started), node_seconds: [perNode[0].seconds, perNode[1].seconds], values: perNode.map((p) => p.values) };
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

function compared(variant: string, run: Awaited<ReturnType<typeof bothNodes>>): Result {
  const [a, b] = run.values;
  const same = a.length === b.length && a.every((v, i) => v === b[i]);
  return { variant, seconds: run.seconds, node_seconds: run.node_seconds, check: same ? 'ok' : 'MISMATCH', error: same ? undefined : `source ${a.join(',')} != target ${b.join(',')}` };
}

// The md5 statements of one table: one per key range of ≤ md5ChunkBytes.
async function md5Statements(url: string, t: TableSpec, bytes: number): Promise<string[]> {
  const parts = Math.max(1, Math.ceil(bytes / md5ChunkBytes));
  const agg = `md5(string_agg(t::text, '' ORDER BY t."${t.key}"))`;
  if (parts === 1) return [`SELECT ${agg} FROM "${t.name}" t`];
  const [{ lo, hi }] = await query(url, `SELECT min("${t.key}")::int8::text AS lo, (max("${t.key}") + 1)::int8::text AS hi FROM "${t.name}"`);
  const [low, high] = [BigInt(lo), BigInt(hi)];
  const step = (high - low + BigInt(parts) - 1n) / BigInt(parts);
  const ranges = Array.from({ length: parts }, (_, i) => `SELECT ${agg} FROM "${t.name}" t WHERE t."${t.key}" >= ${low + step * BigInt(i)} AND t."${t.key}" < ${i === parts - 1 ? high : low + step * BigInt(i + 1)}`);
  // the table's md5: of its ranges' md5s, in key order
  return [`SELECT md5(${ranges.map((r) => `coalesce((${r}), '')`).join(' || ')})`];
}

interface VerifyOutcome {
  result: Result;
  tables: any[];
  differences: any[];
}

// start_verify on the node's database; polls its verify_runs row until the
// run ended; the time from the call to the poll that saw the end.
async function runVerify(variant: string, node: NodeDb, options: Record<string, unknown> = {}): Promise<VerifyOutcome> {
  const client = new Client({ connectionString: node.url });
  await client.connect();
  try {
    const started = Date.now();
    const {
      rows: [{ r }],
    } = await client.query('SELECT steep_repl.start_verify($1, NULL, $2) AS r', [node.id, options]);
    const id = Number(r.verify_id);
    const phases: Record<string, number> = {};
    const { value: run, at } = await pollUntil(
      `verify ${id} to end`,
      async () => {
        const {
          rows: [row],
        } = await client.query(
          `SELECT state, phase, error, hint, rows_compared::float8 AS rows_compared,
                  extract(epoch FROM finished_at - started_at)::float8 AS job_seconds,
                  extract(epoch FROM started_at - requested_at)::float8 AS pickup_seconds
           FROM steep_repl.verify_runs WHERE verify_id = $1`,
          [id],
        );
        const phase = row.state === 'queued' ? 'queued' : row.phase ?? row.state;
        if (phases[phase] === undefined) phases[phase] = secondsSince(started);
        return !['queued', 'running'].includes(row.state) && row;
      },
      verifyTimeoutMs,
      25,
    );
    const seconds = (at - started) / 1000;
    const { rows: tables } = await client.query(
      `SELECT schema_name, table_name, status, compared, note, ranges_total, ranges_differing, rows_compared::float8 AS rows_compared,
              rows_missing::float8 AS rows_missing, rows_extra::float8 AS rows_extra, rows_different::float8 AS rows_different,
              rows_unsettled::float8 AS rows_unsettled, extract(epoch FROM finished_at - started_at)::float8 AS seconds
       FROM steep_repl.verify_tables WHERE verify_id = $1 ORDER BY finished_at - started_at DESC NULLS LAST`,
      [id],
    );
    const { rows: differences } = await client.query(
      'SELECT table_name, key, kind FROM steep_repl.verify_differences WHERE verify_id = $1 ORDER BY table_name, key LIMIT 20',
      [id],
    );
    const error = run.error ? `${run.error}${run.hint ? ` (hint: ${run.hint})` : ''}` : undefined;
    return {
      result: {
        variant,
        seconds,
        state: run.state,
        phases,
        job_seconds: run.job_seconds ?? undefined,
        pickup_seconds: run.pickup_seconds ?? undefined,
        ranges: tables.reduce((s: number, t: any) => s + Number(t.ranges_total), 0),
        rows_compared: run.rows_compared,
        verify_id: id,
        found: differences.map((d: any) => `${d.table_name} ${JSON.stringify(d.key)} ${d.kind}`).join(', ') || undefined,
        check: run.state === 'equal' ? 'ok' : 'MISMATCH',
        error,
      },
      tables,
      differences,
    };
  } finally {
    await client.end();
  }
}

const fmtPhases = (p: Record<string, number> | undefined) =>
  p
    ? Object.entries(p)
        .map(([k, v]) => `${k}@${v.toFixed(2)}`)
        .join(' ')
    : '';

function describe(r: Result): string {
  const parts = [r.variant.padEnd(30)];
  if (r.seconds !== undefined) parts.push(`${r.seconds.toFixed(2).padStart(7)} s`);
  if (r.node_seconds) parts.push(`(source ${r.node_seconds[0].toFixed(2)} s, target ${r.node_seconds[1].toFixed(2)} s)`);
  if (r.state) parts.push(`state ${r.state}`);
  if (r.job_seconds !== undefined) parts.push(`job ${r.job_seconds.toFixed(2)} s (picked up after ${r.pickup_seconds?.toFixed(2)} s)`);
  if (r.phases) parts.push(`phases ${fmtPhases(r.phases)}`);
  if (r.ranges !== undefined) parts.push(`${r.ranges} ranges, ${r.rows_compared} rows compared`);
  if (r.found) parts.push(`found: ${r.found}`);
  parts.push(r.check);
  if (r.error) parts.push(r.error);
  if (r.load !== undefined) parts.push(`load ${r.load.toFixed(2)}`);
  return parts.join('  ');
}

export interface ExplainedStatement {
  server: string;
  ms: number;
  query: string;
  plan: string;
}

const autoExplain: Array<[string, string]> = [
  ['session_preload_libraries', 'auto_explain'],
  ['auto_explain.log_min_duration', '50ms'],
  ['auto_explain.log_analyze', 'on'],
  ['auto_explain.log_buffers', 'on'],
  ['auto_explain.log_timing', 'off'],
];

// auto_explain for new sessions of both servers, one verify, its plans out
// of the servers' logs, the settings reset.
async function explainedVerify(node: NodeDb, clusters: Record<'source' | 'target', Cluster>, logDir: string | undefined): Promise<ExplainedStatement[]> {
  const sizes: Record<string, number> = {};
  for (const [name, cluster] of Object.entries(clusters)) {
    sizes[name] = fs.statSync(path.join(cluster.dataDir, 'server.log')).size;
    for (const [k, v] of autoExplain) await query(cluster.url(), `ALTER SYSTEM SET ${k} = '${v}'`);
    await query(cluster.url(), 'SELECT pg_reload_conf()');
  }
  let outcome: VerifyOutcome | undefined;
  try {
    outcome = await runVerify('steep-repl verify (auto_explain, untimed)', node);
  } finally {
    for (const cluster of Object.values(clusters)) {
      for (const [k] of autoExplain) await query(cluster.url(), `ALTER SYSTEM RESET ${k}`);
      await query(cluster.url(), 'SELECT pg_reload_conf()');
    }
  }
  const statements: ExplainedStatement[] = [];
  for (const [name, cluster] of Object.entries(clusters)) {
    const fd = fs.openSync(path.join(cluster.dataDir, 'server.log'), 'r');
    const size = fs.fstatSync(fd).size - sizes[name];
    const buffer = Buffer.alloc(Math.max(0, size));
    fs.readSync(fd, buffer, 0, buffer.length, sizes[name]);
    fs.closeSync(fd);
    const text = buffer.toString();
    if (logDir) {
      fs.mkdirSync(logDir, { recursive: true });
      fs.writeFileSync(path.join(logDir, `explain-${name}.log`), text);
    }
    // LOG:  duration: 123.4 ms  plan:\n\tQuery Text: ...\n\t<plan lines>
    for (const m of text.matchAll(/LOG:  duration: ([\d.]+) ms  plan:\n((?:\t.*\n?)+)/g)) {
      const lines = m[2].split('\n').map((l) => l.replace(/^\t/, ''));
      const queryEnd = lines.findIndex((l, i) => i > 0 && /^\S/.test(l) && !/^Query Text:/.test(l) && /\(cost=|\(actual/.test(l));
      statements.push({
        server: name,
        ms: Number(m[1]),
        query: lines.slice(0, queryEnd).join(' ').replace(/^Query Text: /, '').replace(/\s+/g, ' ').slice(0, 200),
        plan: lines
          .slice(queryEnd)
          .filter((l) => /\(cost=|Sort Method|Disk:|Batches|Workers Launched/.test(l))
          .map((l) => l.replace(/  \(cost=[^)]*\)/, '').replace(/\(actual /, '(').trimEnd())
          .join('\n'),
      });
    }
  }
  console.log('');
  console.log(`auto_explain of one more verify (untimed, ${outcome?.result.seconds?.toFixed(2)} s, state ${outcome?.result.state}): statements over 50 ms`);
  for (const s of statements.sort((a, b) => b.ms - a.ms)) {
    console.log(`- ${s.server} ${s.ms.toFixed(0)} ms: ${s.query}`);
    console.log(s.plan.replace(/^/gm, '    '));
  }
  return statements;
}

const allVariants = ['count', 'count-heap', 'md5', 'hashsum', 'verify'] as const;

// count(*) as a scan of the table itself: an all-visible table (vacuumed)
// is otherwise counted from its primary key's index, which is smaller than
// the rows a verify must read.
const heapOnly = ['SET enable_indexonlyscan = off', 'SET enable_indexscan = off', 'SET enable_bitmapscan = off'];

// The plan's node types, top down, as one line.
async function planShape(url: string, sql: string, setup: string[] = []): Promise<string> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    for (const s of setup) await client.query(s);
    const { rows } = await client.query(`EXPLAIN (FORMAT json) ${sql}`);
    const shape: string[] = [];
    const walk = (n: any): void => {
      shape.push(`${n['Node Type']}${n['Relation Name'] ? ` on ${n['Relation Name']}` : ''}${n['Index Name'] ? ` using ${n['Index Name']}` : ''}${n['Workers Planned'] ? ` (${n['Workers Planned']} workers)` : ''}`);
      (n.Plans ?? []).forEach(walk);
    };
    walk(rows[0]['QUERY PLAN'][0].Plan);
    return shape.join(' > ');
  } finally {
    await client.end();
  }
}

const bench: Benchmark = {
  description:
    'verify of a synchronized pair vs count(*) on both nodes at once, whole-table md5(string_agg) and a row-hash sum; then one changed row: the time to find it beyond the equal case',
  async run(args) {
    const megabytes = numberArg(args, 'mb', 1100);
    const rounds = Math.max(1, numberArg(args, 'rounds', 1));
    const only = selectedVariants(stringArg(args, 'only'), allVariants, allVariants);
    const rowsPerRange = stringArg(args, 'rows-per-range');
    const changed = !args.includes('--no-changed');
    const logDir = stringArg(args, 'logs');
    const explain = args.includes('--explain');

    await withBenchClusters('verify', agents, async (own) => {
      const tables = [bigTable('big', megabytes * 0.9), ...Array.from({ length: smallTables }, (_, i) => smallTable(`small_${i}`, (megabytes * 0.1) / smallTables))];
      const pair = await synchronizedPair(own.clusters, 'bench_ver', tables, agents, rowsPerRange ? { STEEP_REPL_VERIFY_ROWS_PER_RANGE: rowsPerRange } : {});
      const { data, target } = pair;
      const source = data.source;
      const urls: [string, string] = [source.url, target.url];
      try {
        const missing = await missingFunctions(target.url, ['start_verify']);
        const verifyAvailable = missing.length === 0;
        if (!verifyAvailable) console.log(`steep_repl.${missing.join(', ')} not installed: the verify variants are skipped`);

        const md5Sql = new Map<string, string[]>();
        for (const t of tables) md5Sql.set(t.name, await md5Statements(source.url, t, data.sizes[t.name]));
        const plan: Array<[string, string, () => Promise<Result>]> = [
          ['count', 'count(*) both nodes', async () => compared('count(*) both nodes', await bothNodes(urls, () => tables.map((t) => `SELECT count(*) FROM "${t.name}"`)))],
          [
            'count-heap',
            'count(*) heap scan both nodes',
            async () => compared('count(*) heap scan both nodes', await bothNodes(urls, () => tables.map((t) => `SELECT count(*) FROM "${t.name}"`), heapOnly)),
          ],
          ['md5', 'md5(string_agg) both nodes', async () => compared('md5(string_agg) both nodes', await bothNodes(urls, () => tables.flatMap((t) => md5Sql.get(t.name)!)))],
          [
            'hashsum',
            'sum(row hash) both nodes',
            async () =>
              compared('sum(row hash) both nodes', await bothNodes(urls, () => tables.map((t) => `SELECT count(*)::text || ':' || coalesce(sum(hash_record_extended(t, 0)), 0)::text FROM "${t.name}" t`))),
          ],
          [
            'verify',
            'steep-repl verify (equal)',
            async () => {
              const { result } = await runVerify('steep-repl verify (equal)', target);
              // equal: synchronized, also after a round that left it diverged
              const state = await nodeState(target);
              return state === 'synchronized' || result.check !== 'ok' ? result : { ...result, check: 'MISMATCH', error: `equal, but the node is ${state}` };
            },
          ],
        ];
        const selected = plan.filter(([key]) => only.includes(key) && (key !== 'verify' || verifyAvailable));

        console.log(`plan of count(*) on big: ${await planShape(target.url, 'SELECT count(*) FROM big')}`);
        console.log(`plan of count(*) on big, heap scan: ${await planShape(target.url, 'SELECT count(*) FROM big', heapOnly)}`);
        console.log(`plan of the md5 of big's first range: ${await planShape(target.url, md5Sql.get('big')![0].replace(/^SELECT md5\(coalesce\(\((.*?)\), ''\) \|\|.*$/s, '$1'))}`);
        console.log(`plan of the row-hash sum on big: ${await planShape(target.url, 'SELECT sum(hash_record_extended(t, 0)) FROM big t')}`);
        // Untimed: every table read once on both nodes (their pages in the
        // OS cache, as for every variant after the first).
        const warming = Date.now();
        await bothNodes(urls, () => tables.map((t) => `SELECT count(*) FROM "${t.name}"`));
        console.log(`warm-up (count(*) on both nodes, untimed): ${secondsSince(warming).toFixed(1)} s`);
        console.log('');

        // One row of big changed on the target only (not replicated), and back.
        const changedId = Math.floor(Number(data.counts.big) / 2);
        const [{ payload: original }] = await query(target.url, 'SELECT payload FROM big WHERE id = $1', [changedId]);
        const setPayload = (payload: string) =>
          query(target.url, `BEGIN; SET LOCAL session_replication_role = replica; UPDATE big SET payload = ${escapeLiteral(payload)} WHERE id = ${changedId}; COMMIT`);
        const changedVariant = 'steep-repl verify (1 row changed)';
        let changedTables: any[] = [];
        const changedRun = async (): Promise<Result> => {
          await setPayload('changed on the target only');
          try {
            const outcome = await runVerify(changedVariant, target);
            changedTables = outcome.tables;
            const foundIt = outcome.differences.some((d) => d.table_name === 'big' && String(d.key?.id) === String(changedId) && d.kind === 'different');
            const onlyIt = outcome.differences.length === 1;
            const r = outcome.result;
            const state = await nodeState(target);
            const good = r.state === 'differs' && foundIt && onlyIt && state === 'diverged';
            return {
              ...r,
              check: good ? 'ok' : 'MISMATCH',
              error: good ? undefined : `expected differs with big {"id": ${changedId}} different alone and the node diverged; got ${r.state}, node ${state}${r.error ? `: ${r.error}` : ''}`,
            };
          } finally {
            await setPayload(original);
          }
        };

        const byVariant = new Map<string, Result[]>([...selected.map(([, v]): [string, Result[]] => [v, []]), [changedVariant, []]]);
        for (let round = 1; round <= rounds; round++) {
          const prefix = rounds > 1 ? `round ${round}  ` : '';
          for (const [, variant, run] of round % 2 ? selected : [...selected].reverse()) {
            await attempt(byVariant.get(variant)!, run, (err) => ({ variant, check: 'error', error: errorLine(err) }), describe, prefix);
          }
          // the next round's equal verify runs on the node this one left diverged
          if (changed && verifyAvailable) {
            await attempt(byVariant.get(changedVariant)!, changedRun, (err) => ({ variant: changedVariant, check: 'error', error: errorLine(err) }), describe, prefix);
          }
        }
        const medianOf = (variant: string) => medianOfPassed(byVariant.get(variant));
        const changedSeconds = medianOf(changedVariant);
        const changedResult = byVariant.get(changedVariant)!.slice(-1)[0];

        // Untimed, last: one more verify, the row changed, with auto_explain
        // in its sessions on both servers: where its time goes, statement by statement.
        let plans: ExplainedStatement[] = [];
        if (explain && verifyAvailable) {
          await setPayload('changed on the target only');
          try {
            plans = await explainedVerify(target, own.clusters, logDir);
          } finally {
            await setPayload(original);
          }
        }

        const count = medianOf('count(*) both nodes');
        const countHeap = medianOf('count(*) heap scan both nodes');
        const md5 = medianOf('md5(string_agg) both nodes');
        const hashsum = medianOf('sum(row hash) both nodes');
        const verify = medianOf('steep-repl verify (equal)');
        const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? a / b : undefined);
        const fmt = (v: number | undefined, goal?: (v: number) => boolean) => (v === undefined ? '–' : `${v.toFixed(2)}×${goal ? (goal(v) ? ' ✓' : ' ✗') : ''}`);
        const verifyOverCount = ratio(verify, count);
        const beyond = changedSeconds !== undefined && verify !== undefined ? changedSeconds - verify : undefined;

        console.log('');
        console.log(`dataset: ${(data.bytes / MiB).toFixed(0)} MB on each node (pg_table_size of ${tables.length} tables; big: ${(data.sizes.big / MiB).toFixed(0)} MB, ${data.counts.big} rows)${rounds > 1 ? `; medians of ${rounds} rounds` : ''}`);
        console.log('| variant | time | verify time over this one | check |');
        console.log('|---|---|---|---|');
        for (const [, variant] of selected) {
          const s = medianOf(variant);
          const goal = variant.startsWith('count(*)') ? (v: number) => v <= 2 : undefined;
          const last = byVariant.get(variant)!.slice(-1)[0];
          console.log(
            `| ${variant} | ${s?.toFixed(2) ?? '–'} s | ${variant.startsWith('steep-repl') ? '' : fmt(ratio(verify, s), goal)}${goal ? ' (goal ≤ 2×)' : ''} | ${last.check}${last.error ? `: ${last.error}` : ''} |`,
          );
        }
        if (changedResult) {
          const signed = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(2)} s`;
          console.log(
            `| steep-repl verify, 1 row changed | ${changedSeconds?.toFixed(2) ?? '–'} s | ${beyond !== undefined ? `${signed(beyond)} beyond equal (goal < 2 s) ${beyond < 2 ? '✓' : '✗'}` : ''} | ${changedResult.check}${changedResult.found ? ` (found ${changedResult.found})` : ''}${changedResult.error ? `: ${changedResult.error}` : ''} |`,
          );
          const big = changedTables.find((t) => t.table_name === 'big');
          if (big) console.log(`  big in the changed run: ${big.ranges_total} ranges, ${big.ranges_differing} differing, ${big.seconds?.toFixed(2)} s`);
        }
        if (verifyAvailable) console.log(`verify over count(*): ${fmt(verifyOverCount, (v) => v <= 2)} (goal ≤ 2×); over count(*) heap scan: ${fmt(ratio(verify, countHeap), (v) => v <= 2)}; over md5: ${fmt(ratio(verify, md5))}; over the row-hash sum: ${fmt(ratio(verify, hashsum))}`);
        saveAgentLog(logDir, pair.agent);
        const all = [...byVariant.values()].flat();
        const failed = all.filter((r) => r.check === 'MISMATCH' || r.check === 'error');
        console.log(
          JSON.stringify({
            bench: 'verify',
            dataset_mb: data.bytes / MiB,
            big_mb: data.sizes.big / MiB,
            big_rows: Number(data.counts.big),
            init_seconds: pair.synchronized,
            results: all,
            explained: plans.length ? plans : undefined,
            ratios: { verify_over_count: verifyOverCount ?? null, verify_over_count_heap: ratio(verify, countHeap) ?? null, verify_over_md5: ratio(verify, md5) ?? null, verify_over_hashsum: ratio(verify, hashsum) ?? null },
            changed_beyond_equal_seconds: beyond ?? null,
            failed: failed.map((r) => r.variant),
          }),
        );
        if (failed.length) throw new Error(`verify bench FAILED: ${failed.map((r) => `${r.variant} (${r.check}${r.error ? `: ${r.error}` : ''})`).join('; ')}`);
      } finally {
        await pair.agent.stop();
        agents.delete(pair.agent);
      }
    });
  },
};

export default bench;
