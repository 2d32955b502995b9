import { Queryable, TableName } from './queryable';

export interface VerifyRunReport {
  phase?: 'planning' | 'hashing' | 'drilling' | 'rechecking';
  percent?: number;
  tables_done?: number;
  rows_compared?: number;
  peer_lsn?: string;
}

export interface VerifyTableReport extends TableName {
  status?: 'hashing' | 'drilling' | 'rechecking';
  compared?: 'key_ranges' | 'whole_table';
  note?: string;
  rows_estimate?: number | null;
  ranges_total?: number;
  ranges_done?: number;
  ranges_differing?: number;
  rows_compared?: number;
}

// Fields left out stay as they were. Returns when a cancel was asked from SQL.
export async function reportVerifyProgress(
  db: Queryable,
  verifyId: number,
  run: VerifyRunReport,
  tables: VerifyTableReport[] = [],
): Promise<{ state: string; cancel_requested_at: string | null }> {
  return (await db.query('SELECT steep_repl.report_verify_progress($1, $2, $3) AS r', [verifyId, run, JSON.stringify(tables)])).rows[0].r;
}
