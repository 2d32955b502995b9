// Progress that is true: per table from pg_subscription_rel (state) and
// pg_stat_progress_copy (rows while a table copies) on the target, against
// the totals measured on the source; steep_repl.report_init_progress turns
// it into percentages and events.
import { Client } from 'pg';

export interface TableReport {
  schema_name: string;
  table_name: string;
  state: 'pending' | 'copying' | 'copied' | 'done';
  rows_copied: number;
}

export interface SubscriptionSnapshot {
  tables: TableReport[];
  workersActive: number;
  allReady: boolean;
  // Errors of the subscription's table-sync and apply workers so far
  // (pg_stat_subscription_stats); their messages are in the server log.
  workerErrors: number;
}

// srsubstate: i init, d data copy, f copy finished, s synchronized, r ready.
// A table whose copy finished between two polls shows no COPY row; its row
// count then stays at the last one seen (the report raises a finished table
// to the source's count).
const pollSql = `
  SELECT n.nspname AS schema_name, c.relname AS table_name, sr.srsubstate AS substate,
         coalesce(p.tuples_processed, 0)::float8 AS tuples_processed
  FROM pg_subscription s
  JOIN pg_subscription_rel sr ON sr.srsubid = s.oid
  JOIN pg_class c ON c.oid = sr.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_stat_progress_copy p ON p.relid = sr.srrelid AND p.command = 'COPY FROM'
  WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`;

const workersSql = `
  SELECT (SELECT count(*) FILTER (WHERE relid IS NOT NULL) FROM pg_stat_subscription WHERE subname = $1)::int AS sync_workers,
         (SELECT coalesce(sum(sync_error_count + apply_error_count), 0) FROM pg_stat_subscription_stats WHERE subname = $1)::int AS errors`;

export async function pollSubscription(target: Client, name: string): Promise<SubscriptionSnapshot> {
  const [{ rows }, workers] = [await target.query(pollSql, [name]), await target.query(workersSql, [name])];
  const tables = rows.map((r): TableReport => {
    const state = r.substate === 'r' ? 'done' : r.substate === 'i' ? 'pending' : r.substate === 'd' ? 'copying' : 'copied';
    const rows_copied = Number(r.tuples_processed);
    return { schema_name: r.schema_name, table_name: r.table_name, state, rows_copied };
  });
  return {
    tables,
    workersActive: workers.rows[0]?.sync_workers ?? 0,
    allReady: tables.every((t) => t.state === 'done'),
    workerErrors: workers.rows[0]?.errors ?? 0,
  };
}

// Rates smoothed over the last polls (exponential moving average), so one
// slow poll does not make the ETA jump.
export class RateMeter {
  private last?: { at: number; rows: number; bytes: number };
  rowsPerSecond = 0;
  bytesPerSecond = 0;

  constructor(private readonly smoothing = 0.3) {}

  update(rows: number, bytes: number, at = Date.now()): void {
    if (this.last && at > this.last.at) {
      const seconds = (at - this.last.at) / 1000;
      const rowRate = Math.max(0, (rows - this.last.rows) / seconds);
      const byteRate = Math.max(0, (bytes - this.last.bytes) / seconds);
      const first = this.rowsPerSecond === 0 && this.bytesPerSecond === 0;
      this.rowsPerSecond = first ? rowRate : this.smoothing * rowRate + (1 - this.smoothing) * this.rowsPerSecond;
      this.bytesPerSecond = first ? byteRate : this.smoothing * byteRate + (1 - this.smoothing) * this.bytesPerSecond;
    }
    this.last = { at, rows, bytes };
  }

  eta(bytesRemaining: number): number | null {
    return this.bytesPerSecond > 0 ? Math.ceil(Math.max(0, bytesRemaining) / this.bytesPerSecond) : null;
  }
}
