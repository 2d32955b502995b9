// The manifest of a two-phase snapshot directory (SPEC 4.3): what snapshot
// generate wrote and snapshot apply checks before it changes anything.
//
//   <dir>/manifest.json    this, with a checksum of its own content
//   <dir>/schema.sql       DDL of the tables, from the fingerprint definitions
//   <dir>/sequences.json   the sequences' values when the snapshot was taken
//   <dir>/data/<file>      one COPY stream per part, compressed as the manifest says
//
// Like pg_basebackup's backup_manifest, the manifest carries a checksum of
// itself: sha256 of its content without that field, serialized compactly
// (JSON.stringify keeps the order the keys were read in), so an edit of any
// value is found and a change of whitespace only is not one.
import { createHash } from 'node:crypto';
import { PartPlace } from '../sql/initParts';

export const manifestFormat = 1;
export const manifestFile = 'manifest.json';
export const schemaFile = 'schema.sql';
export const sequencesFile = 'sequences.json';
export const dataDir = 'data';

export type Compression = 'none' | 'gzip' | 'zstd' | 'lz4';
export const compressions: Compression[] = ['none', 'gzip', 'zstd', 'lz4'];

// A column as the COPY stream carries it: name and type (format_type, so
// the apply can tell whether a binary stream fits the target's column).
export interface ManifestColumn {
  name: string;
  type: string;
  builtin: boolean;
}

export interface ManifestPart extends PartPlace {
  rows: number;
  // the COPY stream's bytes before and after compression
  raw_bytes: number;
  stored_bytes: number;
  sha256: string;
  // data/<name>: a file name inside the snapshot directory, nothing else
  file: string;
}

export interface ManifestTable {
  schema_name: string;
  table_name: string;
  // binary: COPY (FORMAT binary), when every column is a built-in type
  format: 'text' | 'binary';
  columns: ManifestColumn[];
  // the table's fingerprint on the source at the snapshot (schema_fingerprints.fingerprint)
  fingerprint: string;
  rows: number;
  raw_bytes: number;
  stored_bytes: number;
  parts: ManifestPart[];
}

export interface ManifestSequence {
  schema_name: string;
  sequence_name: string;
  last_value: string;
  is_called: boolean;
}

// A file of the directory other than data (schema.sql, sequences.json).
export interface ManifestFile {
  file: string;
  bytes: number;
  sha256: string;
}

export interface Manifest {
  format_version: number;
  snapshot_id: string;
  source: {
    node_id: string;
    // pg_control_system().system_identifier, as text (it exceeds 2^53)
    system_identifier: string;
    server_version_num: number;
    server_version: string;
    dbname: string;
  };
  slot_name: string;
  publication: string;
  consistent_lsn: string;
  created_at: string;
  expires_at: string;
  compression: Compression;
  workers: number;
  split_tables_larger_than: number;
  max_parts: number;
  tables: ManifestTable[];
  sequences: ManifestSequence[];
  files: ManifestFile[];
  totals: { tables: number; parts: number; rows: number; raw_bytes: number; stored_bytes: number };
  manifest_checksum: string;
}

export type ManifestBody = Omit<Manifest, 'manifest_checksum'>;

export function manifestChecksum(body: ManifestBody | Record<string, unknown>): string {
  const { manifest_checksum: _ignored, ...rest } = body as Record<string, unknown>;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex');
}

// The text of manifest.json for a body: the checksum is the last field.
export function manifestText(body: ManifestBody): string {
  return `${JSON.stringify({ ...body, manifest_checksum: manifestChecksum(body) }, null, 2)}\n`;
}

// A name the manifest may give a file: data/<name> or a top-level file of
// the format, made of letters, digits, '.', '_' and '-' (no '..', no
// separators, nothing absolute). Anything else is refused before any path
// is built from it.
const dataName = /^data\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function isSafeDataFile(name: unknown): name is string {
  return typeof name === 'string' && dataName.test(name) && !name.includes('..') && name.length <= 255;
}

export function isSafeTopFile(name: unknown): name is string {
  return name === schemaFile || name === sequencesFile;
}

// A file name for a part that says what it is while staying in the safe
// alphabet: number, leaf (odd characters replaced), part.
export function partFileName(index: number, part: { leaf_schema: string; leaf_name: string; part_no: number; part_count: number }, compression: Compression): string {
  const slug = (s: string) => s.normalize('NFKD').replace(/[^A-Za-z0-9]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 40) || 'x';
  const ext = { none: '', gzip: '.gz', zstd: '.zst', lz4: '.lz4' }[compression];
  const suffix = part.part_count > 1 ? `.p${part.part_no}of${part.part_count}` : '';
  return `${dataDir}/${String(index).padStart(5, '0')}-${slug(part.leaf_schema)}.${slug(part.leaf_name)}${suffix}.copy${ext}`;
}
