import { Queryable } from './queryable';
import { TableName } from './queryable';

export interface TableReport extends TableName {
  state: 'pending' | 'copying' | 'copied' | 'done';
  rows_copied: number;
  rows_total?: number;
  bytes_total?: number;
}

export interface ProgressStats {
  rows_per_second?: number | null;
  bytes_per_second?: number | null;
  eta_seconds?: number | null;
  workers_active?: number;
  workers_max?: number;
  lag_bytes?: number | null;
}

// The row steep_repl.report_init_progress returns (init_progress; numbers
// of bigint and numeric columns as strings).
export interface ReportedProgress {
  rows_copied: string;
  bytes_copied: string;
  bytes_total: string | null;
  cancel_requested_at: Date | null;
}

// What the agent measured; SQL turns it into percentages, totals and events.
export async function reportInitProgress(db: Queryable, nodeId: string, tables: TableReport[], stats: ProgressStats = {}): Promise<ReportedProgress> {
  const { rows } = await db.query('SELECT * FROM steep_repl.report_init_progress($1, $2, $3)', [nodeId, JSON.stringify(tables), stats]);
  return rows[0];
}
