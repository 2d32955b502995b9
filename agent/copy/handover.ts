// From the copy to the stream: the subscription from the slot whose
// snapshot the parts were read on (create_slot = false, copy_data = false),
// so it starts exactly at the slot's consistent point.
//
// When the snapshot was lost before every part was copied (its holder
// ended: the source restarted, the agent was stopped, the holder outlived
// its wait), a table with a part still to do cannot be completed from the
// parts it has (any new read is later than the slot's start). Such tables
// go to PostgreSQL's own per-table sync, which is exact: emptied here
// (under an origin), left out of the publication while the subscription is
// created (so it marks only the complete tables ready), then added back and
// brought in by ALTER SUBSCRIPTION ... REFRESH PUBLICATION WITH (copy_data
// = true). Until a table's sync is done the apply worker skips its changes;
// the sync copies it on a snapshot of its own and catches up to the stream.
// Tables complete on the snapshot are kept and not copied again.
import { Client } from 'pg';
import { SteepError } from '../../lib/errors';
import { tableLabel } from '../../lib/identifiers';
import { resyncedInitParts } from '../../lib/sql/initParts';
import { sameTable, TableName } from '../../lib/sql/queryable';
import type { InitRun } from '../init/runner';
import { pollMs } from '../init/runner';
import { withoutReplicating } from '../replication/origin';
import { ident, qualified } from '../replication/quoting';
import { createSubscription, findSubscription, SubscriptionRow } from '../replication/subscription';
import { maxWorkerErrors, pollSubscription } from '../replication/table-sync';

export async function handOver(run: InitRun, resync: TableName[]): Promise<void> {
  let subscription = await findSubscription(run.target, run.name, run.state.subscription_oid);
  const inSubscription = subscription ? (await pollSubscription(run.target, subscription.name, subscription.oid)).tables : [];
  const toSync = resync.filter((t) => !inSubscription.some((s) => sameTable(s, t)));
  if (toSync.length) await emptyTables(run.target, toSync);
  if (!subscription) {
    if (resync.length) await run.withSource((s) => setPublished(s, run.name, resync, false));
    subscription = await subscribeFromSlot(run, run.name, { resync: resync.map(tableLabel) });
  }
  if (resync.length) {
    await run.withSource((s) => setPublished(s, run.name, resync, true));
    if (toSync.length) await run.target.query(`ALTER SUBSCRIPTION ${ident(subscription.name)} REFRESH PUBLICATION WITH (copy_data = true)`);
    await followTableSync(run, resync);
    await resyncedInitParts(run.target, run.nodeId);
  }
  const planned = (await run.refresh()).tables;
  await run.report(planned.map((t) => ({ schema_name: t.schema_name, table_name: t.table_name, state: 'done', rows_copied: t.rows_copied })));
}

// The subscription from the init's slot, which starts at its consistent
// point: nothing copied (the parts hold the snapshot's rows), no slot made.
export async function subscribeFromSlot(run: InitRun, publication: string, logFields: Record<string, unknown> = {}): Promise<SubscriptionRow> {
  const subscription = await createSubscription(run.target, {
    name: run.name,
    conninfo: run.sourceConninfo(),
    publication,
    slotName: run.state.slot_name ?? run.name,
    copyData: false,
    createSlot: false,
    origin: run.state.origin,
  });
  await run.record({ subscription_oid: subscription.oid });
  run.log('info', 'init.subscription_created', {
    subscription: run.name,
    copy_data: false,
    slot_name: run.state.slot_name,
    consistent_lsn: run.state.consistent_lsn,
    publication,
    origin: run.state.origin,
    ...logFields,
  });
  return subscription;
}

// Without replicating, as an apply worker writes (no triggers, no
// foreign-key checks); TRUNCATE unless a table outside the list refers to one.
async function emptyTables(target: Client, tables: TableName[]): Promise<void> {
  await withoutReplicating(target, async () => {
    await target.query('BEGIN');
    try {
      await target.query('SET LOCAL session_replication_role = replica');
      await target.query('SAVEPOINT truncating');
      try {
        await target.query(`TRUNCATE ${tables.map(qualified).join(', ')}`);
      } catch (err) {
        if ((err as { code?: string }).code !== '0A000') throw err;
        await target.query('ROLLBACK TO SAVEPOINT truncating');
        for (const t of tables) await target.query(`DELETE FROM ${qualified(t)}`);
      }
      await target.query('COMMIT');
    } catch (err) {
      await target.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
}

// Adds to or drops from the pair's publication what it lacks or has of the list.
async function setPublished(source: Client, publication: string, tables: TableName[], published: boolean): Promise<void> {
  const { rows } = await source.query('SELECT schemaname AS schema_name, tablename AS table_name FROM pg_publication_tables WHERE pubname = $1', [publication]);
  const isIn = (t: TableName) => rows.some((r) => sameTable(r, t));
  const change = tables.filter((t) => isIn(t) !== published);
  if (!change.length) return;
  await source.query(`ALTER PUBLICATION ${ident(publication)} ${published ? 'ADD' : 'DROP'} TABLE ${change.map(qualified).join(', ')}`);
}

// Until PostgreSQL's table sync has every listed table ready.
async function followTableSync(run: InitRun, tables: TableName[]): Promise<void> {
  run.log('info', 'init.resync_started', { tables: tables.map(tableLabel) });
  let errorsAtStart: number | undefined;
  let reportedAt = 0;
  const listed = (t: TableName) => tables.some((r) => sameTable(r, t));
  for (;;) {
    run.checkpoint();
    const sync = await pollSubscription(run.target, run.name, run.state.subscription_oid);
    if (!sync.found) throw new SteepError(`the subscription ${run.name} no longer exists on node ${run.nodeId}`, undefined, 'cancel this init and start it again');
    errorsAtStart ??= sync.workerErrors;
    if (sync.workerErrors - errorsAtStart >= maxWorkerErrors) {
      throw new SteepError(
        `the subscription's workers failed ${sync.workerErrors - errorsAtStart} times while PostgreSQL copied the tables again`,
        undefined,
        `the reason is in the target server's log (logical replication worker errors); fix it, then resume or cancel`,
      );
    }
    const mine = sync.tables.filter(listed);
    const ready = mine.length === tables.length && mine.every((t) => t.state === 'done');
    if (ready || Date.now() - reportedAt >= pollMs) {
      // a table the sync has not finished is copying; done ones stay copied until the stream is checked
      await run.report(mine.map((t) => ({ ...t, state: t.state === 'done' ? 'copied' : t.state })), { workers_active: sync.workersActive });
      reportedAt = Date.now();
    }
    if (ready) return;
    await run.pause(250);
  }
}
