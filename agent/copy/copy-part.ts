// One part, streamed: COPY ... TO STDOUT on the source session (which has
// imported the snapshot) piped into COPY ... FROM STDIN on the target, with
// the stream's back-pressure, so memory stays flat whatever the size. The
// target side runs in one transaction that also marks the part done: a
// copy cut off anywhere leaves no rows of it and the part still to do.
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { ident, qualified } from '../replication/quoting';
import { Part } from '../../lib/sql/initParts';
import { rangeCondition } from './parts';

// How a table's columns travel: by name, binary where both sides allow it.
export interface ColumnPlan {
  columns: string[];
  binary: boolean;
}

// Bytes per second per worker, for an operator who must spare the source
// (and for tests that need a copy to take a while); unset: no limit.
const maxRate = Number(process.env.STEEP_REPL_COPY_MAX_RATE ?? 0);

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
  bytes: number;
}

// bytes: a counter the caller reads while the copy runs.
export async function copyPart(options: {
  nodeId: string;
  source: Client;
  target: Client;
  part: Part;
  plan: ColumnPlan;
  // an earlier copy of this part began (and was rolled back): what is in its range is not the snapshot's
  again: boolean;
  progress: { bytes: number };
}): Promise<PartCopy & { leftovers: number }> {
  const { source, target, part, plan } = options;
  const cols = plan.columns.map(ident).join(', ');
  const where = rangeCondition(part);
  const leaf = `${ident(part.leaf_schema)}.${ident(part.leaf_name)}`;
  const format = plan.binary ? ' (FORMAT binary)' : '';
  const read = where ? `COPY (SELECT ${cols} FROM ONLY ${leaf} WHERE ${where}) TO STDOUT${format}` : `COPY ${leaf} (${cols}) TO STDOUT${format}`;
  const write = `COPY ${qualified(part)} (${cols}) FROM STDIN${format}`;

  await target.query('BEGIN');
  try {
    let leftovers = 0;
    // By key only (the target's row order says nothing of the source's
    // blocks), and not for a leaf: its first and last ranges are open and
    // would reach into other partitions of the target's table.
    const ownTable = part.leaf_schema === part.schema_name && part.leaf_name === part.table_name;
    if (options.again && part.split === 'key' && ownTable) {
      leftovers = (await target.query(`DELETE FROM ${qualified(part)} WHERE ${where ?? 'true'}`)).rowCount ?? 0;
    }
    const into = target.query(copyFrom(write));
    const out = source.query(copyTo(read));
    out.on('data', (chunk: Buffer) => (options.progress.bytes += chunk.length));
    await (maxRate > 0 ? pipeline(out, throttle(maxRate), into) : pipeline(out, into));
    const rows = into.rowCount;
    await target.query('SELECT steep_repl.finish_init_part($1, $2, $3, $4, $5, $6)', [
      options.nodeId,
      part.leaf_schema,
      part.leaf_name,
      part.part_no,
      rows,
      options.progress.bytes,
    ]);
    await target.query('COMMIT');
    return { rows, bytes: options.progress.bytes, leftovers };
  } catch (err) {
    await target.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

function throttle(bytesPerSecond: number): Transform {
  const startedAt = Date.now();
  let sent = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      sent += chunk.length;
      const due = startedAt + (sent / bytesPerSecond) * 1000;
      setTimeout(() => done(null, chunk), Math.max(0, due - Date.now()));
    },
  });
}
