// Direct's reading side of the copy workers: each worker has a source
// session in a transaction on the exported snapshot and reads every part it
// takes with COPY (SELECT ... WHERE <range>) TO STDOUT there, so all parts
// are the database at the slot's consistent point.
import { Client } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { connect, nodeClientConfig } from '../../lib/connection';
import { SteepError } from '../../lib/errors';
import { Part } from '../../lib/sql/initParts';
import type { InitRun } from '../init/runner';
import { ident } from '../replication/quoting';
import { ColumnPlan, columnPlan, PartReader, PartSource } from './copy-part';
import { importSnapshot, isSnapshotGone, readerOptions } from './holder';
import { rangeCondition } from './parts';

// The snapshot can no longer be imported (its holder is gone).
export class SnapshotLost extends SteepError {
  constructor(snapshotName: string) {
    super(`the exported snapshot ${snapshotName} no longer exists on the source`);
    this.name = 'SnapshotLost';
  }
}


export function snapshotReader(run: InitRun, snapshotName: string): PartReader {
  return {
    describe: { snapshot: snapshotName },
    async open(_worker, signal) {
      const node = run.sourceNode;
      const where = `node ${node.node_id} at ${node.host}:${node.port}/${node.dbname}`;
      const source = await connect({ ...nodeClientConfig(node, 'steep-repl copy'), options: readerOptions }, where, signal);
      try {
        await importSnapshot(source, snapshotName);
      } catch (err) {
        await source.end().catch(() => undefined);
        if (isSnapshotGone(err)) throw new SnapshotLost(snapshotName);
        throw err;
      }
      return snapshotSource(source);
    },
  };
}

function snapshotSource(source: Client): PartSource {
  return {
    columns: (part, target) =>
      columnPlan(source, target, { schema: part.leaf_schema, name: part.leaf_name }, { schema: part.schema_name, name: part.table_name }),
    async read(part, plan) {
      return { streams: [source.query(copyTo(readStatement(part, plan)))] };
    },
    close: () => source.end().catch(() => undefined),
  };
}

// The part's rows of its leaf, in the plan's columns.
function readStatement(part: Part, plan: ColumnPlan): string {
  const cols = plan.columns.map(ident).join(', ');
  const where = rangeCondition(part);
  const leaf = `${ident(part.leaf_schema)}.${ident(part.leaf_name)}`;
  const format = plan.binary ? ' (FORMAT binary)' : '';
  return where ? `COPY (SELECT ${cols} FROM ONLY ${leaf} WHERE ${where}) TO STDOUT${format}` : `COPY ${leaf} (${cols}) TO STDOUT${format}`;
}
