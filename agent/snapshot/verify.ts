// What snapshot apply checks before it changes anything (SPEC 4.3, issue
// 11): the directory against its manifest (the manifest's own checksum and
// format, every name a file inside the directory, every file present,
// regular, of the size and sha256 listed, nothing else there), and the
// snapshot against its source now (its row ready and not expired, its slot
// there, unconsumed and not invalidated, the same node and server, the same
// replicated tables with the same fingerprints). Every problem found is
// listed in one refusal, so one look at it says everything to mend.
//
// A name from the manifest is checked (isSafeDataFile, isSafeTopFile)
// before any path is built from it, and files are opened without following
// a symbolic link: nothing outside the directory is ever read.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Client } from 'pg';
import { SteepError } from '../../lib/errors';
import { shellWord } from '../../lib/format';
import { tableLabel } from '../../lib/identifiers';
import { checkCompression } from '../../lib/snapshot/compression';
import {
  compressions,
  dataDir,
  isSafeDataFile,
  isSafeTopFile,
  Manifest,
  manifestChecksum,
  manifestFile,
  manifestFormat,
  ManifestPart,
  ManifestTable,
} from '../../lib/snapshot/manifest';
import { listReplicatedTables } from '../../lib/sql/listReplicatedTables';
import { FileHasher, withFileHashers } from './file-hash';

// The snapshots row on the source, as the apply reads it.
export interface SnapshotRow {
  snapshot_id: string;
  source_node_id: string;
  output_dir: string;
  state: 'generating' | 'ready' | 'failed' | 'expired' | 'deleted';
  slot_name: string;
  publication: string;
  consistent_lsn: string | null;
  manifest_checksum: string | null;
  error: string | null;
  expires_at: Date;
  expired: boolean;
}

export interface VerifiedSnapshot {
  dir: string;
  manifest: Manifest;
  row: SnapshotRow;
}

// A refusal lists at most this many problems (the rest are counted).
const maxListed = 25;
// A manifest larger than this is not one generate wrote.
const maxManifestBytes = 256 * 1024 * 1024;

export class SnapshotRefused extends SteepError {
  constructor(
    readonly problems: string[],
    what: string,
    hint: string,
  ) {
    const listed = problems.slice(0, maxListed).map((p, i) => `(${i + 1}) ${p}`);
    const more = problems.length > maxListed ? `; and ${problems.length - maxListed} more` : '';
    super(`${what} cannot be applied: ${problems.length} problem${problems.length === 1 ? '' : 's'}: ${listed.join('; ')}${more}`, undefined, hint);
    this.name = 'SnapshotRefused';
  }
}

export interface VerifyOptions {
  source: Client;
  // the option as given: a snapshot id, or the absolute path of its directory
  snapshot: string;
  sourceNodeId: string;
  targetNodeId: string;
  // files hashed at once
  parallel: number;
}

// Problems are gathered by kind, so the hint says what mends each kind.
interface Findings {
  files: string[];
  snapshot: string[];
  source: string[];
}

export async function verifySnapshot(options: VerifyOptions): Promise<VerifiedSnapshot> {
  const found: Findings = { files: [], snapshot: [], source: [] };
  const { source, sourceNodeId } = options;
  const byPath = options.snapshot.startsWith('/');
  const what = `snapshot ${options.snapshot}`;

  let row = byPath ? undefined : await snapshotRow(source, options.snapshot);
  if (!byPath && !row) {
    found.snapshot.push(`source node ${sourceNodeId} has no snapshot ${options.snapshot} (steep-repl snapshot list ${shellWord(sourceNodeId)} lists the ones it has)`);
    throw refusal(found, what, options);
  }
  const dir = byPath ? path.resolve(options.snapshot) : row!.output_dir;
  const read = await readManifest(dir);
  found.files.push(...read.problems);
  const manifest = read.manifest;
  if (manifest) {
    found.files.push(...(await checkFiles(dir, manifest, options.parallel)));
    try {
      checkCompression(manifest.compression, "the target agent's machine");
    } catch (err) {
      found.files.push((err as Error).message);
    }
    if (byPath) row = await snapshotRow(source, manifest.snapshot_id);
    else if (manifest.snapshot_id !== row!.snapshot_id) {
      found.files.push(`the manifest in ${dir} is of snapshot ${manifest.snapshot_id}, not ${row!.snapshot_id}`);
    }
  }
  if (!row) {
    const id = manifest?.snapshot_id;
    found.snapshot.push(
      id
        ? `source node ${sourceNodeId} has no snapshot ${id} (the one ${dir} holds): it was generated on another node, or its row was removed`
        : `no snapshot could be identified: ${dir} has no readable manifest`,
    );
  } else {
    found.snapshot.push(...snapshotProblems(row, sourceNodeId));
    if (row.state === 'ready' && !row.expired) found.snapshot.push(...(await slotProblems(source, row)));
    if (manifest) {
      found.files.push(...rowAgainstManifest(row, manifest));
      found.source.push(...(await sourceProblems(source, manifest, sourceNodeId)));
    }
  }
  if (found.files.length || found.snapshot.length || found.source.length) throw refusal(found, what, options, row);
  return { dir, manifest: manifest!, row: row! };
}

async function snapshotRow(source: Client, id: string): Promise<SnapshotRow | undefined> {
  const { rows } = await source.query("SELECT to_regclass('steep_repl.snapshots') IS NOT NULL AS installed");
  if (!rows[0].installed) return undefined;
  const found = await source.query(
    `SELECT snapshot_id, source_node_id, output_dir, state, slot_name, publication, consistent_lsn::text AS consistent_lsn,
            manifest_checksum, error, expires_at, expires_at <= now() AS expired
     FROM steep_repl.snapshots WHERE snapshot_id = $1`,
    [id],
  );
  return found.rows[0];
}

// The manifest, parsed and checked in itself: its checksum, format and
// shape. A manifest whose shape is off is not read further (no file of it
// is looked at); one whose checksum alone is off is, so every problem shows.
export async function readManifest(dir: string): Promise<{ manifest?: Manifest; problems: string[] }> {
  const file = path.join(dir, manifestFile);
  let text: string;
  try {
    const stat = await fsp.lstat(file);
    if (stat.isSymbolicLink()) return { problems: [`${file} is a symbolic link; the snapshot's files must be in its directory`] };
    if (!stat.isFile()) return { problems: [`${file} is not a regular file`] };
    if (stat.size > maxManifestBytes) return { problems: [`${file} is ${stat.size} bytes, larger than any manifest generate writes`] };
    text = await fsp.readFile(file, { encoding: 'utf8', flag: fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { problems: [`${file} does not exist${await dirNote(dir)}`] };
    return { problems: [`${file} cannot be read: ${(err as Error).message}`] };
  }
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text);
  } catch (err) {
    return { problems: [`${file} is not valid JSON (${(err as Error).message}): it was cut off or edited`] };
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) return { problems: [`${file} is not a manifest (not a JSON object)`] };
  if (body.format_version !== manifestFormat) {
    return { problems: [`${file} has format_version ${JSON.stringify(body.format_version)}; this steep-repl reads format ${manifestFormat}`] };
  }
  const problems: string[] = [];
  if (body.manifest_checksum !== manifestChecksum(body)) {
    problems.push(`${file} does not match its own checksum (manifest_checksum): it was edited or damaged after generate wrote it`);
  }
  const shape = shapeProblems(body);
  if (shape.length) return { problems: [...problems, ...shape.map((p) => `${file}: ${p}`)] };
  return { manifest: body as unknown as Manifest, problems };
}

async function dirNote(dir: string): Promise<string> {
  try {
    return (await fsp.stat(dir)).isDirectory() ? '' : ` (${dir} is not a directory)`;
  } catch {
    return ` (the directory ${dir} does not exist on the target agent's machine)`;
  }
}

// Enough of the shape that the checks below can read it without tripping.
function shapeProblems(m: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const str = (v: unknown) => typeof v === 'string';
  const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (!str(m.snapshot_id) || !str(m.slot_name) || !str(m.publication) || !str(m.consistent_lsn)) problems.push('snapshot_id, slot_name, publication or consistent_lsn is missing');
  const src = m.source as Record<string, unknown> | undefined;
  if (!src || !str(src.node_id) || !str(src.system_identifier)) problems.push('source.node_id or source.system_identifier is missing');
  if (!compressions.includes(m.compression as never)) problems.push(`compression ${JSON.stringify(m.compression)} is none of ${compressions.join(', ')}`);
  if (!Array.isArray(m.files) || !(m.files as unknown[]).every((f) => f && typeof f === 'object' && count((f as any).bytes) && str((f as any).sha256))) {
    problems.push('files is not a list of {file, bytes, sha256}');
  }
  if (!Array.isArray(m.sequences)) problems.push('sequences is not a list');
  if (!Array.isArray(m.tables)) return [...problems, 'tables is not a list'];
  for (const t of m.tables as Array<Record<string, any>>) {
    const name = t && str(t.schema_name) && str(t.table_name) ? tableLabel(t as never) : JSON.stringify(t?.table_name);
    if (!t || !str(t.schema_name) || !str(t.table_name) || !str(t.fingerprint) || !['text', 'binary'].includes(t.format)) {
      problems.push(`table ${name}: schema_name, table_name, fingerprint or format is missing`);
      continue;
    }
    if (!Array.isArray(t.columns) || !t.columns.every((c: any) => c && str(c.name) && str(c.type))) problems.push(`table ${name}: columns is not a list of {name, type}`);
    if (!Array.isArray(t.parts)) {
      problems.push(`table ${name}: parts is not a list`);
      continue;
    }
    for (const p of t.parts as Array<Record<string, any>>) {
      const ok =
        p && str(p.leaf_schema) && str(p.leaf_name) && Number.isSafeInteger(p.part_no) && Number.isSafeInteger(p.part_count) &&
        ['whole', 'key', 'ctid'].includes(p.split) && count(p.rows) && count(p.raw_bytes) && count(p.stored_bytes) && str(p.sha256);
      if (!ok) problems.push(`table ${name}: a part lacks leaf, part_no, split, rows, bytes or sha256`);
    }
  }
  return problems;
}

// data/ itself must be a directory of the snapshot's, not a link: a file
// path through a linked data/ would lead out of the directory (O_NOFOLLOW
// and lstat only look at the last part of a path).
export async function dataDirProblem(dir: string): Promise<string | undefined> {
  const data = path.join(dir, dataDir);
  try {
    const stat = await fsp.lstat(data);
    if (stat.isSymbolicLink()) return `${data} is a symbolic link (refused: the files must be in the snapshot's directory)`;
    if (!stat.isDirectory()) return `${data} is not a directory`;
    return undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return `${data} is missing`;
    return `${data} cannot be read: ${(err as Error).message}`;
  }
}

interface Listed {
  // the manifest's name for it: data/<file>, schema.sql, sequences.json
  name: string;
  bytes: number;
  sha256: string;
}

// Every file the manifest lists, each as it is: safe name, present, a
// regular file (a symbolic link is refused even when it points inside),
// size, sha256; and nothing in the directory or data/ it does not list.
async function checkFiles(dir: string, manifest: Manifest, parallel: number): Promise<string[]> {
  const problems: string[] = [];
  const listed: Listed[] = [];
  const seen = new Set<string>();
  const take = (name: unknown, bytes: number, sha256: string, safe: (n: unknown) => boolean, owner: string) => {
    if (!safe(name)) {
      problems.push(`the manifest lists ${JSON.stringify(name)} for ${owner}: not a file name inside the snapshot directory (refused, nothing read)`);
    } else if (seen.has(name as string)) {
      problems.push(`the manifest lists ${name} more than once`);
    } else {
      seen.add(name as string);
      listed.push({ name: name as string, bytes, sha256 });
    }
  };
  for (const t of manifest.tables) {
    for (const p of t.parts) take(p.file, p.stored_bytes, p.sha256, isSafeDataFile, partName(t, p));
  }
  for (const f of manifest.files) take(f.file, f.bytes, f.sha256, isSafeTopFile, 'a file of the snapshot');

  // what is there and not listed
  const data = await dataDirProblem(dir);
  if (data) problems.push(data);
  problems.push(...(await extraFiles(dir, seen, !data)));
  problems.push(...(await checkEach(dir, data ? listed.filter((f) => !f.name.startsWith(`${dataDir}/`)) : listed, parallel)));
  return problems;
}

// A resumed load checks again the files of the parts it has still to load
// (the directory may have been touched while it was stopped).
export async function partFileProblems(dir: string, manifest: Manifest, parts: Array<{ leaf_schema: string; leaf_name: string; part_no: number }>, parallel: number): Promise<string[]> {
  const listed: Listed[] = [];
  const problems: string[] = [];
  for (const t of manifest.tables) {
    for (const p of t.parts) {
      if (!parts.some((q) => q.leaf_schema === p.leaf_schema && q.leaf_name === p.leaf_name && q.part_no === p.part_no)) continue;
      if (isSafeDataFile(p.file)) listed.push({ name: p.file, bytes: p.stored_bytes, sha256: p.sha256 });
      else problems.push(`the manifest lists ${JSON.stringify(p.file)} for ${partName(t, p)}: not a file name inside the snapshot directory (refused, nothing read)`);
    }
  }
  const data = await dataDirProblem(dir);
  if (data) return [...problems, data];
  return [...problems, ...(await checkEach(dir, listed, parallel))];
}

async function checkEach(dir: string, listed: Listed[], parallel: number): Promise<string[]> {
  const problems: string[] = [];
  const queue = [...listed];
  const lanes = Math.max(1, Math.min(parallel, 16, listed.length));
  await withFileHashers(lanes, (hashers) =>
    Promise.all(
      hashers.map(async (hasher) => {
        for (let f = queue.shift(); f; f = queue.shift()) {
          const problem = await checkFile(dir, f, hasher);
          if (problem) problems.push(problem);
        }
      }),
    ),
  );
  return problems;
}

const partName = (t: ManifestTable, p: ManifestPart) =>
  `${tableLabel(t)}${p.leaf_schema !== t.schema_name || p.leaf_name !== t.table_name ? ` (leaf ${tableLabel({ schema_name: p.leaf_schema, table_name: p.leaf_name })})` : ''}${
    p.part_count > 1 ? ` part ${p.part_no}/${p.part_count}` : ''
  }`;

async function extraFiles(dir: string, listed: Set<string>, lookInData: boolean): Promise<string[]> {
  const problems: string[] = [];
  const top = await fsp.readdir(dir, { withFileTypes: true }).catch((err) => {
    problems.push(`${dir} cannot be listed: ${(err as Error).message}`);
    return [];
  });
  for (const entry of top) {
    if (entry.name === manifestFile || listed.has(entry.name)) continue;
    if (entry.name === dataDir) {
      if (!lookInData) continue;
      const inData = await fsp.readdir(path.join(dir, dataDir)).catch((err) => {
        problems.push(`${path.join(dir, dataDir)} cannot be listed: ${(err as Error).message}`);
        return [] as string[];
      });
      for (const name of inData) if (!listed.has(`${dataDir}/${name}`)) problems.push(`${path.join(dir, dataDir, name)} is not in the manifest (an extra file)`);
      continue;
    }
    problems.push(`${path.join(dir, entry.name)} is not in the manifest (an extra file)`);
  }
  return problems;
}

// Reads the file once, without following a link; a problem or nothing.
async function checkFile(dir: string, f: Listed, hasher: FileHasher): Promise<string | undefined> {
  const file = path.join(dir, f.name);
  let stat: fs.Stats;
  try {
    stat = await fsp.lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return `${file} is missing`;
    return `${file} cannot be read: ${(err as Error).message}`;
  }
  if (stat.isSymbolicLink()) return `${file} is a symbolic link (refused, even one that points inside the directory)`;
  if (!stat.isFile()) return `${file} is not a regular file`;
  if (stat.size !== f.bytes) return `${file} is ${stat.size} bytes, the manifest says ${f.bytes}${stat.size < f.bytes ? ' (cut off)' : ''}`;
  try {
    const sha256 = await hasher.sha256(file);
    if (sha256 !== f.sha256) return `${file} has sha256 ${sha256}, the manifest says ${f.sha256} (its content changed)`;
  } catch (err) {
    return `${file} cannot be read: ${(err as Error).message}`;
  }
  return undefined;
}

// The snapshot's row says it can still be applied.
function snapshotProblems(row: SnapshotRow, sourceNodeId: string): string[] {
  const id = row.snapshot_id;
  switch (row.state) {
    case 'generating':
      return [`snapshot ${id} is still being generated on ${sourceNodeId} (follow it: steep-repl snapshot list ${shellWord(sourceNodeId)}); apply it once it is ready`];
    case 'failed':
      return [`snapshot ${id} failed while it was generated${row.error ? ` (${row.error})` : ''}: its slot is gone`];
    case 'expired':
      return [`snapshot ${id} expired at ${iso(row.expires_at)}: its slot was dropped, so the changes made on ${sourceNodeId} since it was taken can no longer reach a target`];
    case 'deleted':
      return [`snapshot ${id} was deleted: its slot was dropped, so the changes made on ${sourceNodeId} since it was taken can no longer reach a target`];
  }
  if (row.expired) return [`snapshot ${id} is past its expiry (${iso(row.expires_at)}): its slot is about to be dropped`];
  return [];
}

const iso = (d: Date | string) => new Date(d).toISOString();

// The slot every apply copies: there, not invalidated, never consumed
// (still at the consistent point, so a copy of it starts there).
async function slotProblems(source: Client, row: SnapshotRow): Promise<string[]> {
  const { rows } = await source.query(
    `SELECT wal_status, confirmed_flush_lsn::text AS confirmed, confirmed_flush_lsn = $2::pg_lsn AS at_start
     FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()`,
    [row.slot_name, row.consistent_lsn],
  );
  const slot = rows[0];
  if (!slot) return [`the slot ${row.slot_name} of snapshot ${row.snapshot_id} no longer exists on the source (dropped outside steep-repl)`];
  const problems: string[] = [];
  if (slot.wal_status === 'lost') {
    problems.push(`the slot ${row.slot_name} of snapshot ${row.snapshot_id} was invalidated: the source removed WAL it still needed (max_slot_wal_keep_size)`);
  }
  if (row.consistent_lsn && slot.at_start === false) {
    problems.push(`the slot ${row.slot_name} of snapshot ${row.snapshot_id} moved from its consistent point ${row.consistent_lsn} to ${slot.confirmed} (something consumed it): changes in between would be lost`);
  }
  return problems;
}

// The source's row and the manifest describe the same snapshot.
function rowAgainstManifest(row: SnapshotRow, m: Manifest): string[] {
  const problems: string[] = [];
  if (row.manifest_checksum && row.manifest_checksum !== m.manifest_checksum) {
    problems.push(`the manifest's checksum is not the one the source recorded for snapshot ${row.snapshot_id} (a different or rewritten manifest)`);
  }
  if (row.slot_name !== m.slot_name) problems.push(`the manifest names the slot ${m.slot_name}, the source's snapshot row ${row.slot_name}`);
  if (row.publication !== m.publication) problems.push(`the manifest names the publication ${m.publication}, the source's snapshot row ${row.publication}`);
  if (row.consistent_lsn && row.consistent_lsn !== m.consistent_lsn) {
    problems.push(`the manifest's consistent LSN ${m.consistent_lsn} is not the source's ${row.consistent_lsn}`);
  }
  return problems;
}

// The source is the one the snapshot was taken of, and still replicates
// the same tables with the same definitions.
async function sourceProblems(source: Client, m: Manifest, sourceNodeId: string): Promise<string[]> {
  const problems: string[] = [];
  const { rows } = await source.query('SELECT steep_repl.local_node_id() AS node_id, (pg_control_system()).system_identifier::text AS system_identifier');
  if (m.source.node_id !== sourceNodeId) problems.push(`the snapshot was taken of node ${m.source.node_id}, not ${sourceNodeId}`);
  if (rows[0].node_id !== m.source.node_id) problems.push(`the source database is node ${rows[0].node_id ?? '(none)'}, the snapshot's is ${m.source.node_id}`);
  if (rows[0].system_identifier !== m.source.system_identifier) {
    problems.push(`the source server's system identifier is ${rows[0].system_identifier}, the snapshot's ${m.source.system_identifier} (another server, or one restored from a backup)`);
  }
  const publication = await source.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [m.publication]);
  if (!publication.rows.length) problems.push(`the snapshot's publication ${m.publication} no longer exists on the source`);

  const inManifest = m.tables.map((t) => tableLabel(t)).sort();
  const now = (await listReplicatedTables(source)).map((t) => t.label).sort();
  const added = now.filter((t) => !inManifest.includes(t));
  const removed = inManifest.filter((t) => !now.includes(t));
  if (added.length) problems.push(`the source replicates tables the snapshot does not hold: ${added.join(', ')}`);
  if (removed.length) problems.push(`the snapshot holds tables the source no longer replicates: ${removed.join(', ')}`);

  const { rows: prints } = await source.query(
    `SELECT schema_name, table_name, fingerprint FROM steep_repl.table_fingerprints()`,
  );
  for (const t of m.tables) {
    const nowPrint = prints.find((p) => p.schema_name === t.schema_name && p.table_name === t.table_name);
    if (nowPrint && nowPrint.fingerprint !== t.fingerprint) {
      problems.push(`the definition of ${tableLabel(t)} changed on the source since the snapshot (fingerprint ${short(nowPrint.fingerprint)}, the snapshot's ${short(t.fingerprint)})`);
    }
  }
  return problems;
}

const short = (print: string) => print.slice(0, 12);

function refusal(found: Findings, what: string, options: VerifyOptions, row?: SnapshotRow): SnapshotRefused {
  const source = shellWord(options.sourceNodeId);
  const generate = `generate a new snapshot on the source: steep-repl snapshot generate ${source} --output <an empty directory> (or on its database: SELECT steep_repl.generate_snapshot('<directory>')), then apply that one`;
  const cancel = `nothing was changed on either node: cancel this init (steep-repl node cancel ${shellWord(options.targetNodeId)}) and start the apply again`;
  const hints: string[] = [];
  if (found.files.length) {
    hints.push(`the directory is not as generate wrote it: copy it again, whole, from the source agent's machine${row ? ` (${row.output_dir})` : ''}`);
  }
  if (found.snapshot.length) hints.push(row?.state === 'generating' ? 'wait until the snapshot is ready' : generate);
  if (found.source.length) hints.push(`the source changed since the snapshot was taken: ${generate}`);
  return new SnapshotRefused([...found.files, ...found.snapshot, ...found.source], what, `${[...new Set(hints)].join('; ')}; ${cancel}`);
}
