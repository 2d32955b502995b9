// The steps that move a reinit's tables (docs/verify.md, Reinit): out of
// the pair's publication, emptied on the node under its own origin, back in
// and copied by PostgreSQL's table sync, while the subscription keeps
// streaming every other table. Each step runs again safely after a kill:
// what it changes is read back from the catalogs first.
import { SteepError } from '../../lib/errors';
import { tableLabel } from '../../lib/identifiers';
import { getSlotLag } from '../../lib/sql/getSlotLag';
import { sameTable } from '../../lib/sql/queryable';
import { reportInitProgress } from '../../lib/sql/reportInitProgress';
import { describeTables } from '../init/runner';
import { truncateWithoutReplicating } from '../replication/origin';
import { setPublicationMembership } from '../replication/publication';
import { currentLsn } from '../replication/slot';
import { findSubscription, refreshSubscription, SubscriptionRow } from '../replication/subscription';
import { ReinitRun } from './run';

const waitReportMs = 1000;

interface SubscribedTable {
  relid: number;
  schema_name: string;
  table_name: string;
  label: string;
  sync_state: string;
}

export async function pairSubscription(run: ReinitRun): Promise<SubscriptionRow> {
  const subscription = await findSubscription(run.target, run.name, run.state.subscription_oid);
  if (!subscription) {
    throw new SteepError(`the subscription ${run.name} of node ${run.nodeId} no longer exists`, undefined, 'initialize the node again: node detach, then node start --force');
  }
  return subscription;
}

// The reinit's tables as the subscription holds them now.
async function subscribed(run: ReinitRun, subscription: SubscriptionRow): Promise<SubscribedTable[]> {
  const { rows } = await run.target.query('SELECT relid::int8::float8 AS relid, schema_name, table_name, label, sync_state FROM steep_repl.subscription_tables($1)', [
    subscription.name,
  ]);
  return rows.filter((r) => run.tables.some((t) => sameTable(t, r)));
}

// Step 1, again in the job (start_reinit checked it too): every table still
// in the subscription and ready, no kept table's foreign key into them.
export async function checkTables(run: ReinitRun): Promise<void> {
  const subscription = await pairSubscription(run);
  if (!subscription.enabled) {
    throw new SteepError(`the subscription ${subscription.name} of node ${run.nodeId} is disabled`, undefined, 'enable it and let it catch up, then reinit again');
  }
  const found = await subscribed(run, subscription);
  const missing = run.tables.filter((t) => !found.some((f) => sameTable(f, t)));
  if (missing.length) {
    throw new SteepError(`the subscription ${subscription.name} no longer receives ${describeTables(missing.map((t) => ({ label: tableLabel(t) })))}`);
  }
  const busy = found.filter((f) => f.sync_state !== 'r');
  if (busy.length) throw new SteepError(`PostgreSQL is still synchronizing ${describeTables(busy)} on node ${run.nodeId}`, undefined, 'wait until they are ready, then reinit');
  await run.target.query('SELECT steep_repl.reinit_foreign_keys($1, $2::int8[]::oid[])', [run.nodeId, found.map((f) => f.relid)]);
}

// Step 2: the tables leave the pair's publication; returns the source's
// position after that (X).
export async function removeFromPublication(run: ReinitRun): Promise<string> {
  const removed = await run.withSource((s) => setPublicationMembership(s, run.name, run.tables, false));
  const lsn = await run.withSource(currentLsn);
  run.log('info', 'reinit.tables_removed', { tables: run.labels, dropped_now: removed.length, source_lsn: lsn, publication: run.name });
  return lsn;
}

// Steps 3-5: once the slot confirmed X, every change to the tables from
// before the drop is applied and the apply receives none after it; then the
// subscription forgets them and they are emptied here under this database's
// origin (a peer subscribed with origin = none skips the truncate).
export async function emptyTables(run: ReinitRun, lsn: string): Promise<void> {
  const subscription = await pairSubscription(run);
  const slot = subscription.slot_name ?? run.state.slot_name ?? run.name;
  let reportedAt = 0;
  const waitingSince = Date.now();
  let warned = false;
  for (;;) {
    run.checkShutdown();
    const lag = await run.withSource((s) => getSlotLag(s, slot, lsn));
    if (!lag.slot_exists) throw new SteepError(`the slot ${slot} no longer exists on source node ${run.sourceNode.node_id}`);
    if (lag.reached) break;
    if (Date.now() - reportedAt >= waitReportMs) {
      await reportInitProgress(run.target, run.nodeId, [], { lag_bytes: lag.lag_bytes === null ? null : Number(lag.lag_bytes) });
      reportedAt = Date.now();
    }
    if (!warned && Date.now() - waitingSince > 60000) {
      run.log('warn', 'reinit.waiting_for_slot', { slot, source_lsn: lsn, confirmed_lsn: lag.confirmed_lsn, note: 'the subscription has not applied past the drop yet' });
      warned = true;
    }
    await run.pause(200);
  }
  await refreshSubscription(run.target, subscription.name, false);
  const left = await subscribed(run, subscription);
  if (left.length) {
    // never emptied while the subscription still applies to them
    throw new SteepError(`the subscription ${subscription.name} still holds ${describeTables(left)} after its refresh`, undefined, 'check that they left the publication on the source');
  }
  await truncateWithoutReplicating(run.target, run.tables);
  run.log('info', 'reinit.tables_emptied', { tables: run.labels, origin: 'local (not replicated)' });
}

// Step 6: back into the publication, and the subscription refreshed with
// copy_data: PostgreSQL's table sync copies each from a fresh snapshot with
// its own origin set (an origin = none peer skips the copied rows) and
// hands over to the stream at its exact point. Skipped once the tables are
// back in the subscription (a resumed run never adds them twice).
export async function addBack(run: ReinitRun): Promise<void> {
  const subscription = await pairSubscription(run);
  await run.withSource((s) => setPublicationMembership(s, run.name, run.tables, true));
  const back = await subscribed(run, subscription);
  if (back.length < run.tables.length) await refreshSubscription(run.target, subscription.name, true);
  run.log('info', 'reinit.copy_started', { tables: run.labels, subscription: subscription.name, refreshed: back.length < run.tables.length });
}
