// One part, streamed into COPY ... FROM STDIN on the target from whatever
// reads it (a PartReader: the source's COPY on the exported snapshot for
// direct, a snapshot's file for two-phase), with the stream's
// back-pressure, so memory stays flat whatever the size. The target side
// runs in one transaction that also marks the part done: a copy cut off
// anywhere leaves no rows of it and the part still to do.
import { Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ident, qualified } from '../replication/quoting';
import { Part } from '../../lib/sql/initParts';
import { rangeCondition } from './parts';
import { rateLimit } from './throttle';

// How a table's columns travel: by name, binary where both sides allow it.
export interface ColumnPlan {
  columns: string[];
  binary: boolean;
}

// Direct: by the source's columns, binary where both sides have the same built-in types.
export async function columnPlan(source: Client, target: Client, leaf: { schema: string; name: string }, table: { schema: string; name: string }): Promise<ColumnPlan> {
  const read = async (db: Client, schema: string, name: string) =>
    (await db.query('SELECT column_name, type_name, builtin FROM steep_repl.copy_columns($1, $2)', [schema, name])).rows;
  const [onSource, onTarget] = [await read(source, leaf.schema, leaf.name), await read(target, table.schema, table.name)];
  const targetTypes = new Map(onTarget.map((c) => [c.column_name, c]));
  const binary = onSource.every((c) => {
    const t = targetTypes.get(c.column_name);
    return c.builtin && t?.builtin && t.type_name === c.type_name;
  });
  return { columns: onSource.map((c) => c.column_name), binary };
}

export interface PartCopy {
  rows: number;
  // the COPY stream's bytes as the target received them (uncompressed)
  bytes: number;
}

// A part's COPY data as a chain of streams: the first produces, the others
// transform (a hash, a decompressor), the last one's bytes go to the target.
export interface PartStream {
  streams: [Readable, ...Duplex[]];
  // After the stream ended, before the part's COMMIT: throws to roll the
  // part back (two-phase: the file's checksum and counts against the manifest).
  verify?(copied: PartCopy): void;
}

// What the workers copy from (copy/workers.ts).
export interface PartReader {
  // what the log says the copy reads (the snapshot, a directory)
  describe: Record<string, unknown>;
  // A worker's own reading side, opened once per worker.
  open(worker: number, signal: AbortSignal): Promise<PartSource>;
}

export interface PartSource {
  // How the part's relation's columns travel (asked once per leaf; the
  // target session is the worker's).
  columns(part: Part, target: Client): Promise<ColumnPlan>;
  // The part's stream, opened in the worker's transaction on the target.
  read(part: Part, plan: ColumnPlan): Promise<PartStream>;
  close(): Promise<void>;
}

// bytes: a counter the caller reads while the copy runs.
export async function copyPart(options: {
  nodeId: string;
  source: PartSource;
  target: Client;
  part: Part;
  plan: ColumnPlan;
  // an earlier copy of this part began (and was rolled back): what is in its range is not the snapshot's
  again: boolean;
  progress: { bytes: number };
}): Promise<PartCopy & { leftovers: number }> {
  const { target, part, plan } = options;
  const cols = plan.columns.map(ident).join(', ');
  const format = plan.binary ? ' (FORMAT binary)' : '';
  const write = `COPY ${qualified(part)} (${cols}) FROM STDIN${format}`;

  await target.query('BEGIN');
  let stream: PartStream | undefined;
  try {
    let leftovers = 0;
    // By key only (the target's row order says nothing of the source's
    // blocks), and not for a leaf: its first and last ranges are open and
    // would reach into other partitions of the target's table.
    const ownTable = part.leaf_schema === part.schema_name && part.leaf_name === part.table_name;
    if (options.again && part.split === 'key' && ownTable) {
      leftovers = (await target.query(`DELETE FROM ${qualified(part)} WHERE ${rangeCondition(part) ?? 'true'}`)).rowCount ?? 0;
    }
    // read first: a reader that fails to open leaves no COPY open on the target
    stream = await options.source.read(part, plan);
    const into = target.query(copyFrom(write));
    const last = stream.streams[stream.streams.length - 1];
    last.on('data', (chunk: Buffer) => (options.progress.bytes += chunk.length));
    await pipeline([...stream.streams, ...rateLimit(), into]);
    const copied = { rows: into.rowCount, bytes: options.progress.bytes };
    stream.verify?.(copied);
    await target.query('SELECT steep_repl.finish_init_part($1, $2, $3, $4, $5, $6)', [
      options.nodeId,
      part.leaf_schema,
      part.leaf_name,
      part.part_no,
      copied.rows,
      copied.bytes,
    ]);
    await target.query('COMMIT');
    return { ...copied, leftovers };
  } catch (err) {
    for (const s of stream?.streams ?? []) s.destroy();
    await target.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
