// One part of a snapshot, streamed to its file: COPY (...) TO STDOUT on a
// session that imported the exported snapshot → size of the raw stream →
// compressor → sha256 and size of what is stored → data/<file>.tmp (the
// manifest lists the stored file's sha256, which the apply checks before it
// reads a byte, and the raw size, which it checks the stream against);
// then synced, renamed to its name and the directory synced. Memory stays
// flat whatever the size (the streams' back-pressure). A part cut off
// anywhere leaves at most its .tmp, which the next write removes.
import { createHash, Hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { compressor } from '../../lib/snapshot/compression';
import { Compression, ManifestColumn } from '../../lib/snapshot/manifest';
import { SnapshotPart, WrittenPart } from '../../lib/sql/snapshots';
import { rangeCondition } from '../copy/parts';
import { rateLimit } from '../copy/throttle';
import { ident } from '../replication/quoting';
import { syncDir, syncFile, tmpSuffix } from './files';

// How a table's parts are read: its columns by name (not generated, not
// dropped), in binary when every one is a built-in type (a user-defined
// type's binary form can carry its oid, which differs between servers).
export interface TablePlan {
  columns: ManifestColumn[];
  format: 'text' | 'binary';
}

// Read on the session that imported the snapshot: the columns as of it.
export async function tablePlan(source: Client, schemaName: string, tableName: string): Promise<TablePlan> {
  const { rows } = await source.query('SELECT column_name AS name, type_name AS type, builtin FROM steep_repl.copy_columns($1, $2)', [schemaName, tableName]);
  return { columns: rows, format: rows.every((c) => c.builtin) ? 'binary' : 'text' };
}

export function copyStatement(part: SnapshotPart, plan: TablePlan): string {
  const cols = plan.columns.map((c) => ident(c.name)).join(', ');
  const where = rangeCondition({ ...part, state: 'pending' });
  const leaf = `${ident(part.leaf_schema)}.${ident(part.leaf_name)}`;
  const format = plan.format === 'binary' ? ' (FORMAT binary)' : '';
  return where ? `COPY (SELECT ${cols} FROM ONLY ${leaf} WHERE ${where}) TO STDOUT${format}` : `COPY ${leaf} (${cols}) TO STDOUT${format}`;
}

// progress.bytes: the raw bytes so far, read by the caller while it runs.
export async function writePart(options: {
  source: Client;
  dir: string;
  part: SnapshotPart;
  plan: TablePlan;
  compression: Compression;
  progress: { bytes: number };
}): Promise<WrittenPart> {
  const { source, dir, part } = options;
  const final = path.join(dir, part.file_name);
  const tmp = final + tmpSuffix;
  // a write cut off left its .tmp; one killed between its rename and its done mark left the file
  await fs.promises.rm(tmp, { force: true });
  await fs.promises.rm(final, { force: true });

  const raw = counting(options.progress);
  const stored = hashing({ bytes: 0 });
  const out = source.query(copyTo(copyStatement(part, options.plan)));
  const file = fs.createWriteStream(tmp, { flags: 'wx', mode: 0o640 });
  const compressing = options.compression === 'none' ? [] : [compressor(options.compression)];
  const stages = [out, ...rateLimit(), raw, ...compressing, stored.stream, file] as const;
  await pipeline(stages as unknown as [NodeJS.ReadableStream, ...NodeJS.WritableStream[]]);
  await syncFile(tmp);
  await fs.promises.rename(tmp, final);
  await syncDir(path.dirname(final));
  return { rows: out.rowCount, raw_bytes: options.progress.bytes, stored_bytes: stored.counter.bytes, sha256: stored.hash.digest('hex') };
}

function counting(counter: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      counter.bytes += chunk.length;
      done(null, chunk);
    },
  });
}

// A pass-through that counts and hashes what goes through.
function hashing(counter: { bytes: number }): { stream: Transform; hash: Hash; counter: { bytes: number } } {
  const hash = createHash('sha256');
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      counter.bytes += chunk.length;
      done(null, chunk);
    },
  });
  return { stream, hash, counter };
}
