// npm run bench -- merge [--rows 1000000] [--conflicts 100000] [--only-each 100000] [--rounds 1] [--logs DIR]:
// two nodes of --rows rows each that share all but --only-each of them,
// --conflicts of the shared ones with another value on B. Timed side by
// side: steep-repl's analysis (node merge --analyze: range hashes, rows
// only inside ranges that differ), the baseline that pulls both tables
// whole (COPY, both nodes at once) and compares them in the client, and
// one whole merge with prefer-a (from start_merge to both nodes
// synchronized: exchange, subscriptions both ways, final verify). Every
// count is checked against the data's formulas, and after the merge both
// nodes must hold the expected rows. Goal: the whole merge under 60 s.
import { Client } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { query, withClient } from '../test/support/clusters';
import { createNodeDb, NodeDb, registerPair } from '../test/support/node-pair';
import { AgentProcess } from '../test/support/processes';
import { Benchmark } from './run';
import { median, withBenchClusters } from './support-run';
import { numberArg, stringArg } from './support-copy';
import { missingFunctions, pollUntil, saveAgentLog, secondsSince } from './support-synced';

const agents = new Set<AgentProcess>();
const goalSeconds = 60;
const runTimeoutMs = 30 * 60_000;

interface Shape {
  rows: number;
  onlyEach: number;
  conflicts: number;
  // shared ids 1..shared; a conflict every step-th of them
  shared: number;
  step: number;
}

interface Counts {
  identical: number;
  only_a: number;
  only_b: number;
  conflicting: number;
}

const schemaSql = 'CREATE TABLE public.items (id bigint PRIMARY KEY, v text NOT NULL, n int NOT NULL, updated_at timestamptz NOT NULL)';
const rowSql = (prefix: string) =>
  `g, ${prefix}md5(g::text) || md5((g + 1)::text), (g % 1000)::int, timestamptz '2026-01-01' + g * interval '1 second'`;

// A: ids 1..rows. B: the shared ids, a conflict's v prefixed 'b:', then
// its own ids after A's.
async function fill(a: NodeDb, b: NodeDb, s: Shape): Promise<void> {
  await Promise.all([
    query(a.url, `${schemaSql}; INSERT INTO public.items SELECT ${rowSql('')} FROM generate_series(1, ${s.rows}) g`),
    query(
      b.url,
      `${schemaSql};
       INSERT INTO public.items SELECT ${rowSql(`CASE WHEN g % ${s.step} = 0 THEN 'b:' ELSE '' END || `)} FROM generate_series(1, ${s.shared}) g;
       INSERT INTO public.items SELECT ${rowSql('')} FROM generate_series(${s.rows + 1}, ${s.rows + s.onlyEach}) g`,
    ),
  ]);
  await Promise.all([a, b].map((n) => query(n.url, 'VACUUM (FREEZE, ANALYZE) public.items')));
}

const expected = (s: Shape): Counts => ({ identical: s.shared - s.conflicts, only_a: s.onlyEach, only_b: s.onlyEach, conflicting: s.conflicts });

function countsText(c: Counts): string {
  return `identical ${c.identical}, only A ${c.only_a}, only B ${c.only_b}, conflicting ${c.conflicting}`;
}

const sameCounts = (a: Counts, b: Counts): boolean =>
  a.identical === b.identical && a.only_a === b.only_a && a.only_b === b.only_b && a.conflicting === b.conflicting;

// start_merge on A's database, then merge_status polled until the run ends.
async function runMerge(a: NodeDb, b: NodeDb, options: Record<string, unknown>): Promise<{ seconds: number; status: any }> {
  const t0 = Date.now();
  const [{ started }] = await query(a.url, 'SELECT steep_repl.start_merge($1, $2, $3) AS started', [a.id, b.id, options]);
  const { value } = await pollUntil(
    `merge ${started.merge_id} to end`,
    async () => {
      const [{ status }] = await query(a.url, 'SELECT steep_repl.merge_status($1) AS status', [started.merge_id]);
      return !['queued', 'running'].includes(status.state) && status;
    },
    runTimeoutMs,
    100,
  );
  return { seconds: secondsSince(t0), status: value };
}

function statusCounts(status: any): Counts {
  return {
    identical: Number(status.rows_identical),
    only_a: Number(status.rows_only_a),
    only_b: Number(status.rows_only_b),
    conflicting: Number(status.rows_conflicting),
  };
}

// The baseline: both tables whole, as COPY text, both nodes at once; A's
// rows kept in a map by id, B's compared as they stream.
async function clientSideCompare(a: NodeDb, b: NodeDb): Promise<{ seconds: number; counts: Counts }> {
  const t0 = Date.now();
  const stream = async (url: string, onLine: (id: string, line: string) => void) =>
    withClient(url, async (client: Client) => {
      const out = client.query(copyTo('COPY public.items TO STDOUT'));
      let rest = '';
      for await (const chunk of out) {
        const lines = (rest + chunk.toString()).split('\n');
        rest = lines.pop()!;
        for (const line of lines) onLine(line.slice(0, line.indexOf('\t')), line);
      }
    });
  const rowsA = new Map<string, string>();
  const rowsB = new Map<string, string>();
  await Promise.all([stream(a.url, (id, line) => rowsA.set(id, line)), stream(b.url, (id, line) => rowsB.set(id, line))]);
  const counts: Counts = { identical: 0, only_a: 0, only_b: 0, conflicting: 0 };
  for (const [id, line] of rowsA) {
    const other = rowsB.get(id);
    if (other === undefined) counts.only_a += 1;
    else if (other === line) counts.identical += 1;
    else counts.conflicting += 1;
    rowsB.delete(id);
  }
  counts.only_b = rowsB.size;
  return { seconds: secondsSince(t0), counts };
}

// What both nodes must hold after a prefer-a merge: every id of either, A's
// value for the conflicts, no 'b:' value left.
async function checkMerged(a: NodeDb, b: NodeDb, s: Shape): Promise<string[]> {
  const problems: string[] = [];
  const sums = await Promise.all(
    [a, b].map(async (n) => {
      const [r] = await query(
        n.url,
        `SELECT count(*)::int8 AS rows, count(*) FILTER (WHERE v LIKE 'b:%')::int8 AS from_b,
                sum(hash_record_extended(t, 0))::text AS sum FROM public.items t`,
      );
      return r;
    }),
  );
  for (const [i, r] of sums.entries()) {
    const name = i ? 'B' : 'A';
    if (Number(r.rows) !== s.rows + s.onlyEach) problems.push(`${name} holds ${r.rows} rows, not ${s.rows + s.onlyEach}`);
    if (Number(r.from_b) !== 0) problems.push(`${name} holds ${r.from_b} of B's conflicting values`);
  }
  if (sums[0].sum !== sums[1].sum) problems.push('the two nodes hold different rows');
  return problems;
}

const sparseChanges = 100;

// sparseChanges rows of B changed without replicating (under an origin of
// their own, which A's origin = none subscription skips), then one
// analysis and one baseline on the pair; both must find exactly those rows.
async function sparseRound(a: NodeDb, b: NodeDb, changes: number, failures: string[]): Promise<{ analysis: number; baseline: number }> {
  await withClient(b.url, async (client) => {
    await client.query("SELECT pg_replication_origin_create('bench_sparse')");
    await client.query("SELECT pg_replication_origin_session_setup('bench_sparse')");
    await client.query(`UPDATE public.items SET v = 'sparse:' || v WHERE id IN (SELECT g * 7919 FROM generate_series(1, ${changes}) g)`);
    await client.query('SELECT pg_replication_origin_session_reset()');
  });
  const want: Counts = { identical: 0, only_a: 0, only_b: 0, conflicting: changes };
  const analysis = await runMerge(a, b, { analyze: true });
  const found = statusCounts(analysis.status);
  want.identical = found.identical;
  const ok = analysis.status.state === 'analyzed' && sameCounts(found, want);
  if (!ok) failures.push(`sparse analysis ${analysis.status.state}: ${analysis.status.error ?? countsText(found)}`);
  console.log(`sparse: analysis ${analysis.seconds.toFixed(2)} s (${countsText(found)}) ${ok ? 'ok' : 'MISMATCH'}`);
  const baseline = await clientSideCompare(a, b);
  const baseOk = sameCounts(baseline.counts, { ...want, identical: baseline.counts.identical }) && baseline.counts.identical === found.identical;
  if (!baseOk) failures.push(`sparse baseline: ${countsText(baseline.counts)}`);
  console.log(`sparse: client-side compare ${baseline.seconds.toFixed(2)} s (${countsText(baseline.counts)}) ${baseOk ? 'ok' : 'MISMATCH'}`);
  return { analysis: analysis.seconds, baseline: baseline.seconds };
}

const bench: Benchmark = {
  description: "merge of two nodes with overlapping data: analysis and the whole merge (prefer-a) vs pulling both tables into the client and comparing there",
  async run(args) {
    const rows = numberArg(args, 'rows', 1_000_000);
    const onlyEach = numberArg(args, 'only-each', Math.round(rows / 10));
    const conflicts = numberArg(args, 'conflicts', Math.round(rows / 10));
    const rounds = Math.max(1, numberArg(args, 'rounds', 1));
    const logDir = stringArg(args, 'logs');
    const shared = rows - onlyEach;
    const step = Math.floor(shared / conflicts);
    if (!(onlyEach >= 0 && conflicts >= 1 && step >= 1)) throw new Error('need --conflicts ≥ 1 and at most --rows − --only-each of them');
    const s: Shape = { rows, onlyEach, conflicts: Math.floor(shared / step), shared, step };

    await withBenchClusters('merge', agents, async (own) => {
      const a = await createNodeDb(own.clusters.source, 'bench_merge_a', 'bench_merge_a', { installer: 'cli' });
      const b = await createNodeDb(own.clusters.target, 'bench_merge_b', 'bench_merge_b', { installer: 'cli' });
      const missing = await missingFunctions(a.url, ['start_merge', 'merge_status']);
      if (missing.length) throw new Error(`steep_repl.${missing.join(', ')} not installed`);
      const t0 = Date.now();
      await fill(a, b, s);
      await registerPair(a, b);
      const [{ mb }] = await query(a.url, "SELECT round(pg_total_relation_size('public.items') / 1048576.0) AS mb");
      console.log(`nodes: ${rows} rows each (${mb} MB on A), ${s.onlyEach} only on each, ${s.conflicts} conflicting; built in ${secondsSince(t0).toFixed(1)} s`);
      console.log(`expected: ${countsText(expected(s))}`);
      const agent = await AgentProcess.start(a.url);
      agents.add(agent);
      try {
        const analyses: number[] = [];
        const baselines: number[] = [];
        const failures: string[] = [];
        for (let round = 1; round <= rounds; round++) {
          const analysis = await runMerge(a, b, { analyze: true });
          const found = statusCounts(analysis.status);
          const ok = analysis.status.state === 'analyzed' && sameCounts(found, expected(s));
          if (ok) analyses.push(analysis.seconds);
          else failures.push(`analysis ${analysis.status.state}: ${analysis.status.error ?? countsText(found)}`);
          console.log(`round ${round}: analysis ${analysis.seconds.toFixed(2)} s (${analysis.status.state}; ${countsText(found)}) ${ok ? 'ok' : 'MISMATCH'}`);
          const baseline = await clientSideCompare(a, b);
          const baseOk = sameCounts(baseline.counts, expected(s));
          if (baseOk) baselines.push(baseline.seconds);
          else failures.push(`baseline: ${countsText(baseline.counts)}`);
          console.log(`round ${round}: client-side compare ${baseline.seconds.toFixed(2)} s (${countsText(baseline.counts)}) ${baseOk ? 'ok' : 'MISMATCH'}`);
        }

        const merge = await runMerge(a, b, { strategy: 'prefer-a' });
        const states = await Promise.all([a, b].map(async (n) => (await query(n.url, 'SELECT init_state FROM steep_repl.nodes WHERE node_id = $1', [n.id]))[0].init_state));
        const problems = merge.status.state === 'merged' ? await checkMerged(a, b, s) : [`merge ${merge.status.state}: ${merge.status.error ?? ''}`];
        if (!states.every((st) => st === 'synchronized')) problems.push(`node states ${states.join(', ')}`);
        failures.push(...problems.map((p) => `merge: ${p}`));
        const notes = (merge.status.tables ?? []).map((t: any) => t.note).filter(Boolean);
        console.log(
          `merge (prefer-a): ${merge.seconds.toFixed(2)} s, ${merge.status.rows_to_a} rows written on A, ${merge.status.rows_to_b} on B; ${problems.length ? problems.join('; ') : 'both nodes synchronized and equal'}${notes.length ? ` (${notes.join('; ')})` : ''}`,
        );

        // The merged pair, then a few rows changed on B alone: the sparse
        // case, where range hashes read little but pass 1.
        const sparse = problems.length ? undefined : await sparseRound(a, b, sparseChanges, failures);

        const analysisMedian = analyses.length ? median(analyses) : undefined;
        const baselineMedian = baselines.length ? median(baselines) : undefined;
        console.log('');
        console.log('| variant | seconds | vs baseline |');
        console.log('|---|---|---|');
        console.log(`| client-side compare (baseline) | ${baselineMedian?.toFixed(2) ?? '–'} | 1.00× |`);
        console.log(`| steep-repl analysis | ${analysisMedian?.toFixed(2) ?? '–'} | ${analysisMedian && baselineMedian ? `${(analysisMedian / baselineMedian).toFixed(2)}×` : ''} |`);
        if (sparse) {
          console.log(`| client-side compare, ${sparseChanges} rows differ | ${sparse.baseline.toFixed(2)} | 1.00× |`);
          console.log(`| steep-repl analysis, ${sparseChanges} rows differ | ${sparse.analysis.toFixed(2)} | ${(sparse.analysis / sparse.baseline).toFixed(2)}× |`);
        }
        console.log(
          `| steep-repl merge, whole (goal < ${goalSeconds} s ${merge.seconds < goalSeconds && !problems.length ? '✓' : '✗'}) | ${merge.seconds.toFixed(2)} | ${baselineMedian ? `${(merge.seconds / baselineMedian).toFixed(2)}×` : ''} |`,
        );
        saveAgentLog(logDir, agent);
        console.log(
          JSON.stringify({
            bench: 'merge',
            rows,
            only_each: s.onlyEach,
            conflicts: s.conflicts,
            analysis_seconds: analysisMedian ?? null,
            baseline_seconds: baselineMedian ?? null,
            merge_seconds: merge.seconds,
            analysis_over_baseline: analysisMedian && baselineMedian ? analysisMedian / baselineMedian : null,
            sparse: sparse ? { changed_rows: sparseChanges, ...sparse, analysis_over_baseline: sparse.analysis / sparse.baseline } : null,
            goal_met: merge.seconds < goalSeconds && !problems.length,
            failed: failures,
          }),
        );
        if (failures.length) throw new Error(`merge bench FAILED: ${failures.join('; ')}`);
      } finally {
        await agent.stop();
        agents.delete(agent);
      }
    });
  },
};

export default bench;
