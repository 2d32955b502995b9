// Rows recorded in merge_conflicts: every conflict of a manual record run
// (both rows at the merge point, from the readers), and the rows an
// exchange could not write (both rows as they are now). Keys and rows go
// as the JSON texts the servers made (lib/sql's recordMergeConflicts takes
// objects, which would round a bigint or a long numeric in JS).
import { Client } from 'pg';
import type { MergeConflictKind } from '../../lib/sql/mergeStatus';
import { Queryable, TableName } from '../../lib/sql/queryable';
import { rowsAt } from './exchange';
import { ExchangeSql, jsonArray } from './exchange-sql';

// conflicts per record_merge_conflicts call (and rows read per statement)
const rowsPerCall = 1000;

const text = (v: string | undefined) => (v === undefined ? 'null' : JSON.stringify(v));

export async function recordConflicts(
  control: Queryable,
  mergeId: number,
  table: TableName,
  kind: MergeConflictKind,
  keys: string[],
  // where each node's row is read: the readers (the merge point) or sessions reading now
  a: Client,
  b: Client,
  ex: ExchangeSql,
  onBatch?: (done: number) => void,
): Promise<number> {
  let recorded = 0;
  for (let i = 0; i < keys.length; i += rowsPerCall) {
    const batch = keys.slice(i, i + rowsPerCall);
    const [ra, rb] = await Promise.all([rowsAt(a, ex, batch), rowsAt(b, ex, batch)]);
    const items = batch.map((key) => {
      const ya = ra.get(key);
      const yb = rb.get(key);
      return `{"key":${key},"kind":${JSON.stringify(kind)},"row_a":${ya?.r ?? 'null'},"row_b":${yb?.r ?? 'null'},"hash_a":${text(ya?.h)},"hash_b":${text(yb?.h)}}`;
    });
    const { rows } = await control.query('SELECT steep_repl.record_merge_conflicts($1, $2, $3, $4::jsonb) AS n', [
      mergeId,
      table.schema_name,
      table.table_name,
      jsonArray(items),
    ]);
    recorded += Number(rows[0].n);
    onBatch?.(i + batch.length);
  }
  return recorded;
}
