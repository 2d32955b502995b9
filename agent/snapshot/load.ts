// Two-phase's reading side of the copy workers (copy/workers.ts): a part is
// its file in the snapshot directory, read without following a link,
// hashed as stored, decompressed and fed to COPY ... FROM STDIN (binary
// when the manifest's table was written so). The part commits only when
// the file's sha256 and size, the stream's bytes and the rows COPY took are
// the manifest's; otherwise it rolls back and the load fails naming the
// file. Also: the parts the init plans from the manifest, the target's
// columns checked against the manifest's before any row is loaded, and the
// sequences the snapshot carries.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { Client } from 'pg';
import { SteepError } from '../../lib/errors';
import { tableLabel } from '../../lib/identifiers';
import { decompressor } from '../../lib/snapshot/compression';
import { isSafeDataFile, Manifest, ManifestPart, ManifestSequence, ManifestTable, sequencesFile } from '../../lib/snapshot/manifest';
import { Part, partPlace } from '../../lib/sql/initParts';
import { PartReader } from '../copy/copy-part';
import { dataDirProblem } from './verify';
import { qualified } from '../replication/quoting';
import { existingRelations } from '../replication/target-tables';

const partKey = (p: { leaf_schema: string; leaf_name: string; part_no: number }) => JSON.stringify([p.leaf_schema, p.leaf_name, p.part_no]);

// The manifest's parts as init_parts rows: estimates are the manifest's counts.
export function manifestParts(manifest: Manifest): Part[] {
  return manifest.tables.flatMap((t) =>
    t.parts.map((p) => ({
      schema_name: t.schema_name,
      table_name: t.table_name,
      ...partPlace(p),
      bytes_estimate: p.raw_bytes,
      rows_estimate: p.rows,
    })),
  );
}

function partIndex(manifest: Manifest): Map<string, { table: ManifestTable; part: ManifestPart }> {
  const index = new Map<string, { table: ManifestTable; part: ManifestPart }>();
  for (const table of manifest.tables) for (const part of table.parts) index.set(partKey(part), { table, part });
  return index;
}

// The manifest's entry for a planned part; a part it does not list is not this snapshot's.
function entryFor(index: ReturnType<typeof partIndex>, part: Part, manifest: Manifest) {
  const entry = index.get(partKey(part));
  if (!entry) throw new SteepError(`the manifest of snapshot ${manifest.snapshot_id} lists no part ${part.part_no} of ${tableLabel({ schema_name: part.leaf_schema, table_name: part.leaf_name })}`);
  return entry;
}

export function fileReader(dir: string, manifest: Manifest, hint: string): PartReader {
  const index = partIndex(manifest);
  return {
    describe: { snapshot: manifest.snapshot_id, directory: dir, compression: manifest.compression },
    async open() {
      return {
        async columns(part) {
          const { table } = entryFor(index, part, manifest);
          return { columns: table.columns.map((c) => c.name), binary: table.format === 'binary' };
        },
        async read(part) {
          const { part: listed } = entryFor(index, part, manifest);
          // checked before the path is built, as verify did
          if (!isSafeDataFile(listed.file)) throw new SteepError(`the manifest lists ${JSON.stringify(listed.file)}: not a file name inside the snapshot directory`, undefined, hint);
          const linked = await dataDirProblem(dir);
          if (linked) throw new SteepError(linked, undefined, hint);
          const file = path.join(dir, listed.file);
          const stored = { bytes: 0, hash: createHash('sha256') };
          const tap = new Transform({
            transform(chunk: Buffer, _encoding, done) {
              stored.bytes += chunk.length;
              stored.hash.update(chunk);
              done(null, chunk);
            },
          });
          const input = (await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)).createReadStream();
          const decompress = decompressor(manifest.compression);
          // an error of the file or of the decompressor says which file
          for (const s of [input, decompress]) {
            s.once('error', (err: Error & { named?: boolean }) => {
              if (err.named) return;
              err.message = `reading ${file}: ${err.message}`;
              err.named = true;
            });
          }
          return {
            streams: [input, tap, decompress],
            verify(copied) {
              const sha256 = stored.hash.digest('hex');
              const wrong: string[] = [];
              if (stored.bytes !== listed.stored_bytes) wrong.push(`${stored.bytes} bytes stored, the manifest says ${listed.stored_bytes}`);
              if (sha256 !== listed.sha256) wrong.push(`sha256 ${sha256}, the manifest says ${listed.sha256}`);
              if (copied.bytes !== listed.raw_bytes) wrong.push(`${copied.bytes} bytes of COPY data, the manifest says ${listed.raw_bytes}`);
              if (copied.rows !== listed.rows) wrong.push(`${copied.rows} rows, the manifest says ${listed.rows}`);
              if (wrong.length) {
                throw new SteepError(`${file} is not the file the manifest lists (${wrong.join('; ')}): its rows were rolled back`, undefined, hint);
              }
            },
          };
        },
        close: async () => undefined,
      };
    },
  };
}

// Before any row is loaded, after the schema step: every column the
// manifest's stream carries exists on the target's table as a column COPY
// writes (not generated), and for a binary stream has the same type (a
// binary value is read by the target's type, so another type would take
// it for something else or refuse it halfway).
export async function checkTargetColumns(target: Client, manifest: Manifest, hint: string): Promise<void> {
  const problems: string[] = [];
  for (const t of manifest.tables) {
    const { rows } = await target.query('SELECT column_name, type_name FROM steep_repl.copy_columns($1, $2)', [t.schema_name, t.table_name]);
    const onTarget = new Map(rows.map((r) => [r.column_name as string, r.type_name as string]));
    for (const c of t.columns) {
      const type = onTarget.get(c.name);
      if (type === undefined) problems.push(`${tableLabel(t)} has no column ${c.name} the snapshot's rows carry (or it is generated there)`);
      else if (t.format === 'binary' && type !== c.type) {
        problems.push(`${tableLabel(t)}.${c.name} is ${type} on the target, ${c.type} in the snapshot, whose rows of it are binary COPY data`);
      }
    }
  }
  if (problems.length) {
    throw new SteepError(`the target's tables do not fit snapshot ${manifest.snapshot_id}: ${problems.slice(0, 25).join('; ')}${problems.length > 25 ? `; and ${problems.length - 25} more` : ''}`, undefined, hint);
  }
}

// sequences.json as generate wrote it (the manifest's list when it has none).
async function snapshotSequences(dir: string, manifest: Manifest): Promise<ManifestSequence[]> {
  if (!manifest.files.some((f) => f.file === sequencesFile)) return manifest.sequences;
  const text = await fsp.readFile(path.join(dir, sequencesFile), { encoding: 'utf8', flag: fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW });
  const parsed = JSON.parse(text);
  const list = Array.isArray(parsed) ? parsed : parsed?.sequences;
  if (!Array.isArray(list)) throw new SteepError(`${path.join(dir, sequencesFile)} holds no list of sequences`);
  return list;
}

// The sequences at the snapshot; one the target has further along is left
// alone (finalize later takes the source's live values the same way).
export async function setSnapshotSequences(target: Client, dir: string, manifest: Manifest): Promise<{ set: string[]; missing: string[] }> {
  const sequences = (await snapshotSequences(dir, manifest)).map((s) => ({ ...s, table_name: s.sequence_name }));
  const existing = new Set(await existingRelations(target, sequences));
  const result = { set: [] as string[], missing: [] as string[] };
  for (const seq of sequences) {
    const name = qualified(seq);
    if (!existing.has(seq)) {
      result.missing.push(name);
      continue;
    }
    await target.query(
      `SELECT setval($1::text::regclass, $2::bigint, $3)
       WHERE coalesce(pg_sequence_last_value($1::text::regclass) < $2::bigint, true)`,
      [name, seq.last_value, seq.is_called],
    );
    result.set.push(name);
  }
  return result;
}
