import type { MergeSampleKeys, MergeTableCounts, MergeTableStatus, MergeTableVerify } from './mergeStatus';
import { Queryable, TableName } from './queryable';

// Any merge_tables columns; left out stay as they were (a table not in the run is added).
export interface MergeTableReport extends Partial<MergeTableCounts> {
  status?: MergeTableStatus;
  sample_keys?: MergeSampleKeys;
  verify?: MergeTableVerify | null;
  note?: string | null;
  started_at?: string | Date | null;
  finished_at?: string | Date | null;
}

export async function recordMergeTable(db: Queryable, mergeId: number, table: TableName, report: MergeTableReport): Promise<void> {
  await db.query('SELECT steep_repl.record_merge_table($1, $2, $3, $4)', [mergeId, table.schema_name, table.table_name, report]);
}
