// Step 7: PostgreSQL's table sync copies the reinit's tables; their
// progress goes to init_table_progress and init_progress as an init's does
// (the live bar, node progress), against the source's totals. Ends once
// every table is ready, then the sequences follow.
import { listReplicatedTables } from '../../lib/sql/listReplicatedTables';
import { sameTable, TableName } from '../../lib/sql/queryable';
import { reportInitProgress } from '../../lib/sql/reportInitProgress';
import { setInitPhase } from '../../lib/sql/setInitPhase';
import { pollMs } from '../init/runner';
import { CopyReports } from '../init/rate-meter';
import { copySequences } from '../replication/sequences';
import { pollSubscription } from '../replication/table-sync';
import { ReinitRun } from './run';
import { pairSubscription } from './steps';

export async function followCopy(run: ReinitRun): Promise<void> {
  await setInitPhase(run.target, run.nodeId, 'copying');
  const subscription = await pairSubscription(run);
  const mine = <T extends TableName>(rows: T[]) => rows.filter((r) => run.tables.some((t) => sameTable(t, r)));
  const totals = mine(await run.withSource(listReplicatedTables));
  const reports = new CopyReports(pollMs);
  let errorsSeen: number | undefined;
  for (;;) {
    run.checkShutdown();
    const sync = await pollSubscription(run.target, subscription.name, subscription.oid);
    const tables = mine(sync.tables).map((t) => {
      const total = totals.find((s) => sameTable(s, t));
      return { ...t, rows_total: total?.rows_total, bytes_total: total?.bytes_total };
    });
    // a table that cannot be copied makes its worker fail and retry by itself
    // forever: said once per new failure, and the reinit waits (it cannot be
    // left half-copied)
    errorsSeen ??= sync.workerErrors;
    if (sync.workerErrors > errorsSeen) {
      run.log('warn', 'reinit.sync_worker_errors', {
        errors: sync.workerErrors - errorsSeen,
        tables: tables.filter((t) => t.state !== 'done').map((t) => t.label),
        hint: "the reason is in the node server's log (logical replication worker errors); PostgreSQL retries the copy by itself",
      });
      errorsSeen = sync.workerErrors;
    }
    const finished = tables.length === run.tables.length && tables.every((t) => t.state === 'done');
    if (finished || reports.due(tables)) {
      const progress = await reportInitProgress(run.target, run.nodeId, tables, { ...reports.stats, workers_active: sync.workersActive });
      if (finished) break;
      reports.reported(tables, progress);
    }
    await run.pause(Math.min(250, pollMs));
  }
  const sequences = await run.withSource((s) => copySequences(s, run.target));
  run.log('info', 'reinit.copied', { tables: run.labels, sequences_copied: sequences.copied.length, sequences_missing: sequences.missing });
}
