// Backups the way a DBA takes them, for the manual init tests: pg_dump,
// pg_restore and pg_basebackup from Debian's PostgreSQL 15 binaries (the
// postgresql-15 package; the manual tests run a PostgreSQL 15 pair, and
// pg_dump refuses a server newer than itself), as the OS user postgres when
// this process is root (the servers run as postgres: what pg_basebackup
// writes must be theirs). A base backup is restored as a new cluster
// directory next to the others of the test file's run directory, so that
// removeRun (the file's afterAll, or a later run's cleanStaleRuns) stops
// and removes it even when the test failed half way.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { postgresUser } from '../../lib/embedded-binaries';
import { Cluster, clusterHandle, freePort, packagedBinDir, startCluster, stopCluster } from '../../lib/embedded-cluster';
import { query } from './clusters';
import { waitUntil } from './wait';

// The client binaries the tests run, as a DBA on a Debian PostgreSQL 15 host would.
export const backupBinDir = packagedBinDir(15);

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

function missingBinaries(): string[] {
  return ['pg_dump', 'pg_restore', 'pg_basebackup'].filter((b) => !fs.existsSync(path.join(backupBinDir, b)));
}

function checkBinaries(): void {
  const missing = missingBinaries();
  if (missing.length) {
    throw new Error(
      `the manual init tests run ${missing.map((b) => path.join(backupBinDir, b)).join(', ')}, missing here: install Debian's postgresql-15 package (apt-get install postgresql-15; .ci/run installs it)`,
    );
  }
}

// A directory the postgres OS user owns (as root) for dumps and base
// backups, under the test file's run directory.
export function backupDir(runDir: string, name = 'backups'): string {
  const dir = path.join(runDir, name);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ids = postgresUser();
  if (ids) fs.chownSync(dir, ids.uid, ids.gid);
  return dir;
}

// Runs a program as postgres (as root) or as this user; resolves with its
// exit code and output, whatever the code.
export function runAsPostgres(file: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<CommandResult> {
  const ids = postgresUser();
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        ...(ids ? { uid: ids.uid, gid: ids.gid } : {}),
        cwd: options.cwd,
        // HOME: root's is closed to postgres (libpq looks for ~/.pgpass there)
        env: { ...process.env, LC_ALL: 'C', HOME: options.cwd ?? '/tmp', PATH: `${backupBinDir}:${process.env.PATH}`, ...options.env },
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err); // could not start it at all
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

// A command line exactly as the CLI printed it (pg_dump …, pg_restore …),
// run by the shell with the 15 binaries first on PATH, in cwd.
export async function runPrinted(command: string, cwd: string): Promise<CommandResult> {
  checkBinaries();
  return runAsPostgres('/bin/sh', ['-c', command], { cwd });
}

// The same, failing with what the command printed unless it exited 0.
export async function runPrintedOk(command: string, cwd: string): Promise<CommandResult> {
  const result = await runPrinted(command, cwd);
  if (result.code !== 0) throw new Error(`${command}\nexited ${result.code}:\n${result.stderr}${result.stdout}`);
  return result;
}

// The printed line that starts with program (pg_dump, pg_restore), trimmed.
export function printedCommand(output: string, program: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith(`${program} `));
  if (lines.length !== 1) throw new Error(`expected one printed ${program} command, found ${lines.length} in:\n${output}`);
  return lines[0];
}

// pg_basebackup of the whole source cluster into dir (a new directory),
// with the WAL it needs streamed along (-X stream), as a DBA takes one.
export async function baseBackup(source: Cluster, dir: string, extraArgs: string[] = []): Promise<void> {
  checkBinaries();
  const args = ['-h', source.host, '-p', String(source.port), '-U', source.user, '-D', dir, '-X', 'stream', '--checkpoint=fast', '--no-sync', ...extraArgs];
  const result = await runAsPostgres(path.join(backupBinDir, 'pg_basebackup'), args, { cwd: path.dirname(dir) });
  if (result.code !== 0) throw new Error(`pg_basebackup ${args.join(' ')} exited ${result.code}:\n${result.stderr}`);
}

export interface RestoredCluster extends Cluster {
  // the server's log so far (for failure messages and recovery checks)
  log(): string;
  start(): Promise<void>;
  stop(): Promise<void>;
  // stopped and its directory gone
  remove(): Promise<void>;
  // until the server left recovery (promoted at its recovery target)
  waitPromoted(timeoutMs?: number): Promise<void>;
}

export interface RestoreOptions {
  // settings written into the copy's postgresql.auto.conf after the
  // source's (the port is always a new one)
  settings?: Record<string, string | number>;
  // lines appended as they are (a recovery settings block as printed)
  conf?: string;
  // standby.signal (stream from primary_conninfo), recovery.signal, or none
  signal?: 'standby' | 'recovery';
  // false: only prepared, not started
  start?: boolean;
  // the port to listen on (one the registry names already); default a free one
  port?: number;
}

const quoteSetting = (v: string | number) => (typeof v === 'number' ? String(v) : `'${String(v).replace(/'/g, "''")}'`);

const restored = new Set<RestoredCluster>();

// A base backup restored as a new cluster directory dataDir (the backup
// itself stays as it was, for another restore), with the settings given,
// started unless told not to. On a failed start the directory is removed.
export async function restoreBaseBackup(backup: string, dataDir: string, options: RestoreOptions = {}): Promise<RestoredCluster> {
  if (fs.existsSync(dataDir)) throw new Error(`${dataDir} exists already`);
  // as this user: the run directory is root's; -a keeps postgres the owner
  const copy = await new Promise<CommandResult>((resolve) =>
    execFile('/bin/cp', ['-a', backup, dataDir], (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout: String(stdout), stderr: String(stderr) })),
  );
  if (copy.code !== 0) throw new Error(`cp -a ${backup} ${dataDir} exited ${copy.code}: ${copy.stderr}`);
  const port = options.port ?? (await freePort());
  const handle = clusterHandle(dataDir, port);
  const logFile = path.join(dataDir, 'server.log');
  const cluster: RestoredCluster = {
    ...handle,
    log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
    start: async () => {
      try {
        await startCluster(handle);
      } catch (err) {
        throw new Error(`the restored copy in ${dataDir} did not start: ${(err as Error).message}\nits log:\n${cluster.log().slice(-4000)}`);
      }
    },
    stop: () => stopCluster(dataDir, 'fast'),
    remove: async () => {
      restored.delete(cluster);
      await stopCluster(dataDir, 'immediate').catch(() => undefined);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
    waitPromoted: async (timeoutMs = 30000) => {
      try {
        await waitUntil(
          `${dataDir} to be promoted`,
          async () => (await query(handle.url(), 'SELECT pg_is_in_recovery() AS r'))[0].r === false,
          timeoutMs,
          100,
        );
      } catch (err) {
        throw new Error(`${(err as Error).message}\nits log:\n${cluster.log().slice(-4000)}`);
      }
    },
  };
  restored.add(cluster);
  try {
    // the source's log came along in the copy: this one's starts empty
    fs.rmSync(logFile, { force: true });
    const settings = { ...options.settings, port };
    const lines = [
      '',
      '# restored from a base backup by the tests',
      ...(options.conf ? [options.conf.trim()] : []),
      ...Object.entries(settings).map(([k, v]) => `${k} = ${quoteSetting(v)}`),
      '',
    ];
    fs.appendFileSync(path.join(dataDir, 'postgresql.auto.conf'), lines.join('\n'));
    if (options.signal) fs.writeFileSync(path.join(dataDir, `${options.signal}.signal`), '');
    const ids = postgresUser();
    if (ids) {
      for (const f of ['postgresql.auto.conf', ...(options.signal ? [`${options.signal}.signal`] : [])]) fs.chownSync(path.join(dataDir, f), ids.uid, ids.gid);
    }
    if (options.start !== false) await cluster.start();
    return cluster;
  } catch (err) {
    await cluster.remove();
    throw err;
  }
}

// For afterAll hooks: every copy this file restored, stopped and removed.
export async function removeRestored(): Promise<void> {
  await Promise.all([...restored].map((c) => c.remove()));
}

// What a promoted copy's newest timeline history file says, read from its
// directory (the tests' own view, next to steep_repl.recovery_end()).
export function newestHistory(dataDir: string): { timeline: number; parent: number; switchpoint: string; reason: string } | undefined {
  const files = fs
    .readdirSync(path.join(dataDir, 'pg_wal'))
    .filter((f) => /^[0-9A-F]{8}\.history$/.test(f))
    .sort();
  if (!files.length) return undefined;
  const newest = files[files.length - 1];
  const last = fs
    .readFileSync(path.join(dataDir, 'pg_wal', newest), 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .pop()!;
  const [parent, switchpoint, reason] = last.split('\t');
  return { timeline: parseInt(newest.slice(0, 8), 16), parent: Number(parent), switchpoint, reason: reason ?? '' };
}
