// npm run bench -- fingerprints [tables] [columns] [runs]
// Set-based fingerprint + capture of every table (steep_repl.capture_fingerprints)
// against the per-table information_schema algorithm, side by side on one
// embedded cluster the benchmark starts and removes itself.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { Client } from 'pg';
import type { Benchmark } from './run';
import { createNodeDatabase, startOwnClusters } from '../test/support/clusters';

// The baseline as tools commonly write it: one query per table, hashing a
// string_agg over information_schema.columns, storing the result.
const baselinePerTable = `
  INSERT INTO bench_baseline (schema_name, table_name, fingerprint)
  SELECT $1::text, $2::text, encode(sha256(convert_to(string_agg(
           column_name || ':' || data_type || ':' || coalesce(character_maximum_length::text, '') || ':' ||
           coalesce(numeric_precision::text, '') || ',' || coalesce(numeric_scale::text, '') || ':' ||
           is_nullable || ':' || coalesce(column_default, ''), '|' ORDER BY ordinal_position), 'UTF8')), 'hex')
    FROM information_schema.columns
   WHERE table_schema = $1::text AND table_name = $2::text`;

// 20 column shapes that cycle: types with modifiers, defaults, NOT NULL, a
// generated and an identity-free primary key.
const columnShapes = [
  'bigint NOT NULL',
  'integer DEFAULT 0',
  'text',
  'varchar(40) NOT NULL',
  "varchar(200) DEFAULT 'x'",
  'numeric(12,2)',
  'numeric(10,4) DEFAULT 1.5',
  'timestamptz DEFAULT now()',
  'timestamp',
  'boolean NOT NULL DEFAULT false',
  'jsonb',
  'uuid',
  'date',
  'double precision',
  'smallint',
  'text[]',
  'bytea',
  'interval',
  'char(3)',
  'real',
];

function tableDdl(index: number, columns: number): string {
  const cols = ['id bigint PRIMARY KEY'];
  for (let c = 1; c < columns; c++) cols.push(`c${c} ${columnShapes[(c + index) % columnShapes.length]}`);
  return `CREATE TABLE bench.t${index} (${cols.join(', ')})`;
}

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

// CPU time (user + system) the server backend spent, from /proc (Linux,
// 100 ticks/s): on a shared, loaded machine it says what the work costs
// where wall time also measures the neighbours.
function backendCpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function measure(pid: number, fn: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> {
  const cpuBefore = backendCpuMs(pid);
  const wall = await timeIt(fn);
  return { wall, cpu: backendCpuMs(pid) - cpuBefore };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x: number) => `${x.toFixed(1)} ms`;

const fingerprints: Benchmark = {
  description: 'fingerprint + capture of every table: set-based pg_catalog function vs per-table information_schema queries',
  async run(args) {
    const [tables = 1000, columns = 20, runs = 7] = args.map(Number);
    if (![tables, columns, runs].every((n) => Number.isInteger(n) && n > 0) || columns < 2) {
      throw new Error('usage: npm run bench -- fingerprints [tables>0] [columns>1] [runs>0]');
    }
    const own = await startOwnClusters('bench-fingerprints', ['node']);
    let client: Client | undefined;
    try {
      const { url } = await createNodeDatabase(own.clusters.node, 'bench');
      // One session throughout: its backend's CPU time is what is measured.
      client = new Client({ connectionString: url });
      await client.connect();
      await client.query('CREATE SCHEMA bench; CREATE TEMP TABLE bench_baseline (schema_name text, table_name text, fingerprint text)');
      const setup = await timeIt(async () => {
        for (let start = 0; start < tables; start += 100) {
          const batch = [];
          for (let i = start; i < Math.min(tables, start + 100); i++) batch.push(tableDdl(i, columns));
          await client!.query(batch.join(';\n'));
        }
        await client!.query('ANALYZE');
      });
      console.log(`database: ${tables} tables x ${columns} columns on PostgreSQL ${(await client.query('SHOW server_version')).rows[0].server_version} (built in ${ms(setup)})`);

      const names = (await client.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'bench' ORDER BY 1")).rows.map(
        (r) => r.table_name as string,
      );
      const capture = () => client!.query("SELECT steep_repl.capture_fingerprints('bench_node') AS n");
      const fingerprintOnly = () => client!.query('SELECT count(*) FROM steep_repl.table_fingerprints()');
      const baseline = async () => {
        await client!.query('TRUNCATE bench_baseline');
        for (const name of names) await client!.query(baselinePerTable, ['bench', name]);
      };

      await capture(); // warm the catalog caches for both sides alike
      await baseline();
      const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      const captureRuns: Array<{ wall: number; cpu: number }> = [];
      const fingerprintRuns: Array<{ wall: number; cpu: number }> = [];
      const baselineRuns: Array<{ wall: number; cpu: number }> = [];
      for (let run = 0; run < runs; run++) {
        captureRuns.push(await measure(pid, capture));
        fingerprintRuns.push(await measure(pid, fingerprintOnly));
        if (run < Math.min(runs, 3)) baselineRuns.push(await measure(pid, baseline));
      }
      const stored = (await client.query("SELECT count(*)::int AS n FROM steep_repl.schema_fingerprints WHERE node_id = 'bench_node'")).rows[0].n;
      const baselineRows = (await client.query('SELECT count(*)::int AS n FROM bench_baseline')).rows[0].n;
      if (stored !== tables || baselineRows !== tables) throw new Error(`expected ${tables} fingerprints, got ${stored} (steep-repl) and ${baselineRows} (baseline)`);

      const wall = (xs: Array<{ wall: number }>) => xs.map((x) => x.wall);
      const cpu = (xs: Array<{ cpu: number }>) => xs.reduce((sum, x) => sum + x.cpu, 0) / xs.length;
      const line = (label: string, xs: Array<{ wall: number; cpu: number }>) =>
        console.log(`${label.padEnd(56)} wall ${ms(median(wall(xs))).padStart(10)} (min ${ms(Math.min(...wall(xs)))})   server CPU ${ms(cpu(xs)).padStart(10)}`);
      console.log(`load average: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} on ${os.cpus().length} cores; runs: ${runs} (baseline: ${baselineRuns.length}); wall = median`);
      line('steep-repl fingerprint + capture (set-based, pg_catalog)', captureRuns);
      line('steep-repl fingerprint only', fingerprintRuns);
      line('baseline per-table information_schema + store', baselineRuns);
      const ours = median(wall(captureRuns));
      const theirs = median(wall(baselineRuns));
      console.log(
        `ratio (baseline / steep-repl): wall ${(theirs / ours).toFixed(1)}x, server CPU ${(cpu(baselineRuns) / cpu(captureRuns)).toFixed(1)}x ` +
          '(goal: under 100 ms and at least 10x)',
      );
    } finally {
      await client?.end().catch(() => undefined);
      await own.remove();
    }
  },
};

export default fingerprints;
