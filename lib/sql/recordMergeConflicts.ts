import type { MergeConflictKind } from './mergeStatus';
import { Queryable, TableName } from './queryable';

export interface MergeConflictRow {
  key: Record<string, unknown>;
  // default conflict
  kind?: MergeConflictKind;
  // to_jsonb of each node's row (null: the node has none)
  row_a: Record<string, unknown> | null;
  row_b: Record<string, unknown> | null;
  // the verify row hashes (TableSql)
  hash_a: string | null;
  hash_b: string | null;
}

// Inserted, or rows/hashes/kind updated for a key recorded already; returns how many.
export async function recordMergeConflicts(db: Queryable, mergeId: number, table: TableName, rows: MergeConflictRow[]): Promise<number> {
  return (
    await db.query('SELECT steep_repl.record_merge_conflicts($1, $2, $3, $4) AS n', [
      mergeId,
      table.schema_name,
      table.table_name,
      JSON.stringify(rows),
    ])
  ).rows[0].n;
}
