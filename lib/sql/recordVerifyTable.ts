import type { DifferenceKindName, VerifyTableCounts } from './getVerifyStatus';
import { Queryable, TableName } from './queryable';

export interface VerifyTableResult extends VerifyTableCounts {
  status: 'equal' | 'differs' | 'unsettled';
  compared: 'key_ranges' | 'whole_table';
  note?: string | null;
  rows_estimate?: number | null;
}

export interface RecordedDifference {
  key: unknown;
  kind: DifferenceKindName;
}

// A table's result and its differing keys (kept up to the run's key limit);
// result null: more keys only.
export async function recordVerifyTable(
  db: Queryable,
  verifyId: number,
  table: TableName,
  result: VerifyTableResult | null,
  differences: RecordedDifference[] = [],
): Promise<void> {
  await db.query('SELECT steep_repl.record_verify_table($1, $2, $3, $4, $5)', [
    verifyId,
    table.schema_name,
    table.table_name,
    result,
    JSON.stringify(differences),
  ]);
}
