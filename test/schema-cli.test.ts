// The schema commands as real CLI processes: node_a's database on cluster
// A holds the registry; node_b's database is on cluster B.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { clusterA, clusterB, createNodeDatabase, dropDatabase, query } from './support/clusters';
import { runCli } from './support/processes';
import { freePort } from '../lib/embedded-cluster';

const oddSchema = 'Sales "EU" ü';
const oddTable = 'Order Lines';
const odd = `"Sales ""EU"" ü"."Order Lines"`;

describe('schema commands', () => {
  let a: { name: string; url: string };
  let b: { name: string; url: string };
  let workDir: string;
  const cli = (...args: string[]) => runCli([...args, '--db', a.url]);
  const targetFingerprints = () => query(b.url, 'SELECT table_name, fingerprint FROM steep_repl.table_fingerprints() ORDER BY 1');

  beforeAll(async () => {
    [a, b] = await Promise.all([createNodeDatabase(clusterA(), 'schema_cli_a'), createNodeDatabase(clusterB(), 'schema_cli_b')]);
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'steep-schema-cli-'));
    const [dbA, dbB] = [a.name, b.name];
    await query(a.url, "SELECT steep_repl.register_node('node_a', '127.0.0.1', $1, $2, 'postgres', 50, NULL, true)", [clusterA().port, dbA]);
    await query(a.url, "SELECT steep_repl.register_node('node_b', '127.0.0.1', $1, $2, 'postgres')", [clusterB().port, dbB]);
    await query(a.url, "SELECT steep_repl.register_node('node_down', '127.0.0.1', $1, 'nothing', 'postgres')", [await freePort()]);
    await query(a.url, "SELECT steep_repl.register_node('bare', '127.0.0.1', $1, 'postgres', 'postgres')", [clusterB().port]);
    const shared = `CREATE TABLE public.customers (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);
      CREATE SCHEMA "Sales ""EU"" ü"`;
    await query(a.url, `${shared}; CREATE TABLE ${odd} ("order" int PRIMARY KEY, "Amount €" numeric(12,2) DEFAULT 0, note varchar(20))`);
    await query(b.url, `${shared}; CREATE TABLE ${odd} ("order" int PRIMARY KEY, "Amount €" numeric(10,2), note varchar(20), legacy int);
      CREATE TABLE public.local_only (x int)`);
    await query(b.url, `INSERT INTO ${odd} VALUES (1, 9.5, 'kept', 7)`);
  });
  afterAll(async () => {
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
    await Promise.all([a && dropDatabase(clusterA(), a.name), b && dropDatabase(clusterB(), b.name)]);
  });

  it('capture stores each node its own fingerprints, with the capture time', async () => {
    const captureA = await cli('schema', 'capture', 'node_a');
    expect(captureA).toMatchObject({ code: 0, stderr: '' });
    expect(captureA.stdout).toMatch(/^captured 2 table fingerprints of node node_a at \S+ \(\d+ ms\)\n$/);
    const captureB = await cli('schema', 'capture', 'node_b', '--json');
    expect(captureB.code).toBe(0);
    expect(JSON.parse(captureB.stdout)).toMatchObject({ node_id: 'node_b', tables: 3 });
    const stored = await query(b.url, 'SELECT node_id, schema_name, table_name, column_count, captured_at FROM steep_repl.schema_fingerprints ORDER BY 2, 3');
    expect(stored.map((r) => [r.node_id, r.schema_name, r.table_name, r.column_count])).toEqual([
      ['node_b', 'Sales "EU" ü', 'Order Lines', 4],
      ['node_b', 'public', 'customers', 2],
      ['node_b', 'public', 'local_only', 1],
    ]);
    expect(Date.now() - stored[0].captured_at.getTime()).toBeLessThan(60000);
    expect(await query(a.url, 'SELECT DISTINCT node_id FROM steep_repl.schema_fingerprints')).toEqual([{ node_id: 'node_a' }]);
  });

  it('compare prints a table and a summary, exit 3 when anything differs, 0 when all match', async () => {
    const compared = await cli('schema', 'compare', 'node_a', 'node_b');
    expect(compared.code).toBe(3);
    expect(compared.stdout).toContain('TABLE');
    expect(compared.stdout).toMatch(/"Sales ""EU"" ü"\."Order Lines"\s+MISMATCH\s+column "Amount €" type differs: source numeric\(12,2\), target numeric\(10,2\)/);
    expect(compared.stdout).toContain('column "Amount €" has default 0 on the source, none on the target');
    expect(compared.stdout).toContain('column legacy integer exists on the target only');
    expect(compared.stdout).toMatch(/public\.local_only\s+LOCAL_ONLY\s+only on node_b/);
    expect(compared.stdout).toMatch(/public\.customers\s+MATCH/);
    expect(compared.stdout.trimEnd().split('\n').pop()).toBe('3 tables: 1 match, 1 mismatch, 0 only on node_a, 1 only on node_b');
    const json = await cli('schema', 'compare', 'node_a', 'node_b', '--json');
    expect(json.code).toBe(3);
    const parsed = JSON.parse(json.stdout);
    expect(parsed.tables.map((t: { table_name: string; status: string; only_on: string | null }) => [t.table_name, t.status, t.only_on])).toEqual([
      [oddTable, 'MISMATCH', null],
      ['customers', 'MATCH', null],
      ['local_only', 'LOCAL_ONLY', 'node_b'],
    ]);
    const matching = await cli('schema', 'compare', 'node_a', 'node_b', '--schemas', 'public', '--json');
    expect(matching.code).toBe(3);
    const itself = await runCli(['schema', 'compare', 'node_a', 'node_a', '--db', a.url]);
    expect(itself.code).toBe(0);
    expect(itself.stdout.trimEnd().split('\n').pop()).toBe('2 tables: 2 match, 0 mismatch, 0 only on node_a, 0 only on node_a');
  });

  it('diff shows one table side by side', async () => {
    const diff = await cli('schema', 'diff', 'node_a', 'node_b', odd);
    expect(diff.code).toBe(3);
    const lines = diff.stdout.split('\n');
    expect(lines[0]).toBe(`${odd}: MISMATCH`);
    expect(lines[1]).toMatch(/^COLUMN\s+node_a\s+node_b\s+DIFFERENCE$/);
    expect(diff.stdout).toMatch(/"Amount €"\s+numeric\(12,2\) DEFAULT 0\s+numeric\(10,2\)\s+type, default/);
    expect(diff.stdout).toMatch(/legacy\s+\(missing\)\s+integer\s+extra/);
    expect(diff.stdout).toMatch(/"order"\s+integer NOT NULL\s+integer NOT NULL\s+=/);
    expect(diff.stdout).toMatch(/primary key\s+\("order"\)\s+\("order"\)/);
    const oneSide = await cli('schema', 'diff', 'node_a', 'node_b', 'public.local_only');
    expect(oneSide.code).toBe(3);
    expect(oneSide.stdout).toMatch(/^public\.local_only: LOCAL_ONLY\n/);
    expect(oneSide.stdout).toMatch(/x\s+\(no table\)\s+integer\s+only on node_b/);
    expect(oneSide.stdout).toContain('- table public.local_only exists on the target only');
    const same = await cli('schema', 'diff', 'node_a', 'node_b', 'customers', '--json');
    expect(same.code).toBe(0);
    expect(JSON.parse(same.stdout)).toMatchObject({ table: 'public.customers', status: 'MATCH', differences: [] });
  });

  it('export writes the fingerprint set as JSON', async () => {
    const file = path.join(workDir, 'node_a.json');
    const exported = await cli('schema', 'export', 'node_a', '--output', file);
    expect(exported).toMatchObject({ code: 0, stderr: '' });
    expect(exported.stdout).toBe(`wrote 2 table fingerprints of node node_a to ${file}\n`);
    const content = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(content).toMatchObject({ format: 'steep-repl.schema-fingerprints', version: 1, node_id: 'node_a' });
    expect(content.tables.map((t: { schema_name: string; table_name: string }) => t.table_name).sort()).toEqual([oddTable, 'customers'].sort());
    expect(content.tables[0].fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(fs.readdirSync(workDir)).toEqual(['node_a.json']);
  });

  it('sync: strict refuses (3), manual asks, auto --dry-run plans, auto applies and keeps rows', async () => {
    const before = await targetFingerprints();
    const strict = await cli('schema', 'sync', 'node_b', '--from', 'node_a');
    expect(strict.code).toBe(3);
    expect(strict.stderr).toContain('error: schema of node node_b differs from node node_a (1 table, mode strict):');
    expect(strict.stderr).toContain(`${odd}: column legacy integer exists on the target only`);
    expect(strict.stderr).not.toMatch(/SR00/);

    const refused = await runCli(['schema', 'sync', 'node_b', '--from', 'node_a', '--mode', 'manual', '--db', a.url], {}, 'n\n');
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('proceed with these differences? [y/N]');
    const accepted = await runCli(['schema', 'sync', 'node_b', '--from', 'node_a', '--mode', 'manual', '--db', a.url], {}, 'y\n');
    expect(accepted.code).toBe(0);
    expect(accepted.stdout).toMatch(/^differences accepted \(manual mode\)/);
    expect(await cli('schema', 'sync', 'node_b', '--from', 'node_a', '--mode', 'manual', '--yes')).toMatchObject({ code: 0 });

    const dryRun = await cli('schema', 'sync', 'node_b', '--from', 'node_a', '--mode', 'auto', '--dry-run');
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toContain(`ALTER TABLE ${odd} DROP COLUMN legacy;`);
    expect(dryRun.stdout).toContain(`ALTER TABLE ${odd} ALTER COLUMN "Amount €" TYPE numeric(12,2);`);
    expect(dryRun.stdout).toMatch(/dry run: \d+ statements planned for node node_b, nothing applied/);
    expect(await targetFingerprints()).toEqual(before);

    const applied = await cli('schema', 'sync', 'node_b', '--from', 'node_a', '--mode', 'auto');
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(/applied \d+ statements on node node_b in one transaction/);
    expect(await query(b.url, `SELECT * FROM ${odd}`)).toEqual([{ order: 1, 'Amount €': '9.50', note: 'kept' }]);
    const after = await cli('schema', 'compare', 'node_a', 'node_b', '--schemas', oddSchema);
    expect(after.code).toBe(0);
    const events = await query(b.url, "SELECT event FROM steep_repl.audit_log WHERE event LIKE 'schema.%' ORDER BY audit_id");
    expect(events.map((e) => e.event)).toEqual([
      'schema.mismatch_detected',
      'schema.mismatch_detected',
      'schema.mismatch_detected',
      'schema.mismatch_detected',
      'schema.mismatch_detected',
      'schema.mismatch_detected',
      'schema.sync_applied',
    ]);
  });

  it('bad input: clear errors, the right exit codes, nothing written', async () => {
    const fingerprintsBefore = await query(a.url, 'SELECT count(*)::int AS n FROM steep_repl.schema_fingerprints');
    const unknown = await cli('schema', 'compare', 'node_a', 'nobody');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown node 'nobody'");
    const down = await cli('schema', 'compare', 'node_a', 'node_down');
    expect(down.code).toBe(6);
    expect(down.stderr).toMatch(/cannot connect to node node_down at 127\.0\.0\.1:\d+\/nothing/);
    const downCapture = await cli('schema', 'capture', 'node_down');
    expect(downCapture.code).toBe(6);
    const bare = await cli('schema', 'compare', 'node_a', 'bare');
    expect(bare.code).toBe(1);
    expect(bare.stderr).toMatch(/steep_repl is not installed in node bare \(127\.0\.0\.1:\d+\/postgres\)/);
    const missingSchema = await cli('schema', 'capture', 'node_a', '--schemas', 'public,nowhere');
    expect(missingSchema.code).toBe(2);
    expect(missingSchema.stderr).toContain(`schema nowhere does not exist in database ${a.name}`);
    const missingBoth = await cli('schema', 'compare', 'node_a', 'node_b', '--schemas', 'nowhere');
    expect(missingBoth.code).toBe(2);
    expect(missingBoth.stderr).toContain(`schema nowhere does not exist in database ${b.name} nor in the source's fingerprint set`);
    const ownSchema = await cli('schema', 'compare', 'node_a', 'node_b', '--schemas', 'steep_repl');
    expect(ownSchema.code).toBe(2);
    const noTable = await cli('schema', 'diff', 'node_a', 'node_b', 'public.nope');
    expect(noTable.code).toBe(2);
    expect(noTable.stderr).toContain('table public.nope exists on neither node node_a nor node node_b');
    const badName = await cli('schema', 'diff', 'node_a', 'node_b', 'a.b.c');
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain('is not a table name');
    const badMode = await cli('schema', 'sync', 'node_b', '--from', 'node_a', '--mode', 'sometimes');
    expect(badMode.code).toBe(2);
    expect(await query(a.url, 'SELECT count(*)::int AS n FROM steep_repl.schema_fingerprints')).toEqual(fingerprintsBefore);

    const missingDir = path.join(workDir, 'no', 'such', 'dir', 'out.json');
    const noDir = await cli('schema', 'export', 'node_a', '--output', missingDir);
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toContain(`directory ${path.dirname(missingDir)} does not exist`);
    const readOnly = process.getuid?.() === 0 ? '/sys' : fs.mkdtempSync(path.join(workDir, 'ro-'));
    if (readOnly !== '/sys') fs.chmodSync(readOnly, 0o555);
    const unwritable = await cli('schema', 'export', 'node_a', '--output', path.join(readOnly, 'out.json'));
    expect(unwritable.code).toBe(2);
    expect(unwritable.stderr).toMatch(/cannot write .*out\.json: (directory .* is not writable|EACCES)/);
    expect(fs.existsSync(path.join(readOnly, 'out.json'))).toBe(false);
    const downExport = await cli('schema', 'export', 'node_down', '--output', path.join(workDir, 'down.json'));
    expect(downExport.code).toBe(6);
    expect(fs.readdirSync(workDir).filter((f) => f !== 'node_a.json' && !f.startsWith('ro-'))).toEqual([]);
  });
});
