// PostgreSQL's own table sync, as a subscription with copy_data runs it:
// per table from pg_subscription_rel (state) and pg_stat_progress_copy (rows
// while a table copies) on the target; steep_repl.report_init_progress
// turns it into percentages and events against the source's totals.
import { Client } from 'pg';
import { TableReport } from '../../lib/sql/reportInitProgress';

export type SyncedTable = TableReport & { label: string };

// Errors of a subscription's workers tolerated while PostgreSQL copies
// tables before the init fails (each retries forever on its own).
export const maxWorkerErrors = Number(process.env.STEEP_REPL_MAX_WORKER_ERRORS ?? 3);

export interface SubscriptionSnapshot {
  tables: SyncedTable[];
  workersActive: number;
  allReady: boolean;
  // false: no subscription with that oid (or, without one, that name)
  found: boolean;
  // Errors of the subscription's table-sync and apply workers so far
  // (pg_stat_subscription_stats); their messages are in the server log.
  workerErrors: number;
}

// srsubstate: i init, d data copy, f copy finished, s synchronized, r ready.
// A table whose copy finished between two polls shows no COPY row; its row
// count then stays at the last one seen (the report raises a finished table
// to the source's count).
const pollSql = `
  SELECT n.nspname AS schema_name, c.relname AS table_name, format('%I.%I', n.nspname, c.relname) AS label, sr.srsubstate AS substate,
         coalesce(p.tuples_processed, 0)::float8 AS tuples_processed
  FROM pg_subscription s
  JOIN pg_subscription_rel sr ON sr.srsubid = s.oid
  JOIN pg_class c ON c.oid = sr.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_stat_progress_copy p ON p.relid = sr.srrelid AND p.command = 'COPY FROM'
  WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND (s.oid = $2::int8::oid OR ($2 IS NULL AND s.subname = $1))`;

const workersSql = `
  WITH s AS (SELECT oid FROM pg_subscription
             WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND (oid = $2::int8::oid OR ($2 IS NULL AND subname = $1)))
  SELECT (SELECT count(*) FILTER (WHERE relid IS NOT NULL) FROM pg_stat_subscription WHERE subid IN (SELECT oid FROM s))::int AS sync_workers,
         (SELECT coalesce(sum(sync_error_count + apply_error_count), 0) FROM pg_stat_subscription_stats WHERE subid IN (SELECT oid FROM s))::int AS errors,
         EXISTS (SELECT 1 FROM s) AS found`;

// By the oid the init recorded (a rename on the target does not hide it), else by name.
export async function pollSubscription(target: Client, name: string, oid?: number | null): Promise<SubscriptionSnapshot> {
  const params = [name, oid ?? null];
  const [{ rows }, workers] = [await target.query(pollSql, params), await target.query(workersSql, params)];
  const tables = rows.map((r): SyncedTable => {
    const state = r.substate === 'r' ? 'done' : r.substate === 'i' ? 'pending' : r.substate === 'd' ? 'copying' : 'copied';
    return { schema_name: r.schema_name, table_name: r.table_name, label: r.label, state, rows_copied: Number(r.tuples_processed) };
  });
  return {
    tables,
    workersActive: workers.rows[0]?.sync_workers ?? 0,
    allReady: tables.every((t) => t.state === 'done'),
    found: workers.rows[0]?.found ?? false,
    workerErrors: workers.rows[0]?.errors ?? 0,
  };
}
