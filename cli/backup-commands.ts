// The commands and settings node prepare prints for the DBA's own backup:
// exact, shell-quoted text to run as printed (docs/manual-init.md and the
// tests run them so). Addresses come from the registry, never with a password:
// libpq takes it from PGPASSWORD or the pgpass file.
import { ConnectionTarget } from '../lib/connection';
import { shellWord } from '../lib/format';

// A libpq keyword/value conninfo; a value is quoted only where libpq needs it.
export function conninfo(node: ConnectionTarget, keys: Array<'host' | 'port' | 'dbname' | 'user'> = ['host', 'port', 'dbname', 'user']): string {
  const value = (v: string | number) => {
    const text = String(v);
    return text !== '' && /^[^\s'\\]+$/.test(text) ? text : `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  };
  const values = { host: node.host, port: node.port, dbname: node.dbname, user: node.user };
  return keys
    .filter((k) => values[k] !== undefined && values[k] !== null)
    .map((k) => `${k}=${value(values[k]!)}`)
    .join(' ');
}

// The URL --db takes (postgres://user@host:port/dbname, percent-encoded).
export function nodeUrl(node: ConnectionTarget): string {
  const host = node.host.includes(':') && !node.host.startsWith('/') ? `[${node.host}]` : encodeURIComponent(node.host);
  const user = node.user ? `${encodeURIComponent(node.user)}@` : '';
  return `postgres://${user}${host}:${node.port}/${encodeURIComponent(node.dbname)}`;
}

// A value in postgresql.conf: single quotes, a quote inside doubled.
export function confValue(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export interface DumpCommandInput {
  snapshotName: string;
  jobs: number;
  dir: string;
  // schemas of the source that are steep-repl's own (steep_repl, graphile_worker, ...): the target has its own
  ownSchemas: string[];
  // steep_repl installed as an extension there (PostgreSQL 18): --exclude-schema
  // would keep CREATE EXTENSION and its configuration tables' rows (the source's registry) in
  extension: boolean;
  source: ConnectionTarget;
}

// Every user schema, on the prepared snapshot. --schema would not do: a
// dump that names public creates it, and the restore stops where the
// target has it already. Publications and subscriptions stay out: the
// target gets its own subscription, and a copied one would start streaming.
export function pgDumpCommand(d: DumpCommandInput): string {
  return [
    'pg_dump',
    `--snapshot=${shellWord(d.snapshotName)}`,
    '--format=directory',
    `--jobs=${d.jobs}`,
    `--file=${shellWord(d.dir)}`,
    ...d.ownSchemas.map((s) => shellWord(`--exclude-schema=${schemaPattern(s)}`)),
    ...(d.extension ? ['--exclude-extension=steep_repl'] : []),
    '--no-publications',
    '--no-subscriptions',
    shellWord(conninfo(d.source)),
  ].join(' ');
}

export function pgRestoreCommand(r: { jobs: number; dir: string; target: ConnectionTarget }): string {
  return ['pg_restore', `--jobs=${r.jobs}`, '--exit-on-error', `--dbname=${shellWord(conninfo(r.target))}`, shellWord(r.dir)].join(' ');
}

// pg_dump reads a name as a pattern: double quotes keep it literal (case, dots, * and ?).
function schemaPattern(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

export function completeCommand(target: string, db: ConnectionTarget, extra: string[] = []): string {
  return ['steep-repl', 'node', 'complete', shellWord(target), ...extra, '--db', shellWord(nodeUrl(db))].join(' ');
}

export interface RecoverySettingsInput {
  lsn: string;
  source: ConnectionTarget;
  // the source's server has enabled subscriptions: the copy must not start their apply workers
  stopSubscriptions: boolean;
}

export interface RecoverySettings {
  // for every restore
  common: Record<string, string>;
  // restored as a standby of the source (touch standby.signal)
  standby: Record<string, string>;
  // restored from a WAL archive (touch recovery.signal)
  archive: Record<string, string>;
}

// Recovery stops right before the first record at or after the slot's LSN
// (inclusive off: on would also replay that record, and a commit there
// would arrive a second time through the slot), then promotes.
export function recoverySettings(r: RecoverySettingsInput): RecoverySettings {
  const common: Record<string, string> = {
    recovery_target_lsn: confValue(r.lsn),
    recovery_target_inclusive: 'off',
    recovery_target_action: 'promote',
    recovery_target_timeline: confValue('current'),
  };
  if (r.stopSubscriptions) common.max_logical_replication_workers = '0';
  return {
    common,
    standby: { primary_conninfo: confValue(conninfo(r.source, ['host', 'port', 'user'])) },
    archive: { restore_command: confValue('cp /path/to/wal/archive/%f "%p"') },
  };
}

export function settingLines(settings: Record<string, string>, indent = '  '): string[] {
  return Object.entries(settings).map(([name, value]) => `${indent}${name} = ${value}`);
}
