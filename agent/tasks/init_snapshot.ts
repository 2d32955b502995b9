// Snapshot initialization (SPEC §4.2): PostgreSQL's own table sync copies
// every table (CREATE SUBSCRIPTION ... copy_data = true), then the same
// subscription streams. Progress comes from pg_subscription_rel and
// pg_stat_progress_copy; a resumed run finds the subscription still
// copying. The rest of the init's life is the common runner's.
import { SteepError } from '../../lib/errors';
import { InitMethod, InitRun, initTask, pollMs } from '../init/runner';
import { CopyReports } from '../init/rate-meter';
import { applyParallel, createSubscription, findSubscription, setSubscriptionEnabled, syncWorkerLimit } from '../replication/subscription';
import { maxWorkerErrors, pollSubscription } from '../replication/table-sync';
import { checkWhileCopying } from '../init/verify-stream';
import { preparedSlotConsumed } from '../init/reverse-slot';


// --parallel is a server-wide setting of the target: the value before is
// recorded first, and the runner puts it back when the init completes,
// fails or is cancelled (restoreSyncWorkers).
async function applyParallelFor(run: InitRun): Promise<void> {
  const parallel = await applyParallel(run.target, run.options.parallel, async (before) => {
    if (run.state.sync_workers_before === null || run.state.sync_workers_before === undefined) await run.record(before);
  });
  if (parallel.changedFrom !== undefined) {
    run.log('warn', 'init.server_setting_changed', {
      setting: 'max_sync_workers_per_subscription',
      from: parallel.changedFrom,
      to: parallel.workersMax,
      note: 'server-wide: applies to every subscription on this server; put back when the init ends',
    });
  }
}

const snapshot: InitMethod = {
  async started(run) {
    return !!(await findSubscription(run.target, run.name, run.state.subscription_oid));
  },

  // The subscription holds the work done; it only needs to run again.
  async resume(run) {
    const subscription = await findSubscription(run.target, run.name, run.state.subscription_oid);
    if (subscription && !subscription.enabled) await setSubscriptionEnabled(run.target, subscription.name, true);
    // a failure put the server setting back; the resumed copy wants it again
    await applyParallelFor(run);
    run.log('info', 'init.subscription_reused', { subscription: subscription?.name ?? run.name });
    // killed between the subscription and the release of its prepared slot
    if (run.state.prepared_slot) await preparedSlotConsumed(run, run.state.prepared_slot);
  },

  async start(run, plan) {
    await applyParallelFor(run);
    const subscription = await createSubscription(run.target, {
      name: run.name,
      conninfo: run.sourceConninfo(),
      publication: run.name,
      slotName: plan.preparedSlot ?? run.state.slot_name ?? run.name,
      copyData: plan.copyData,
      // the reverse of a pair streams from the slot the source prepared
      createSlot: !plan.preparedSlot,
      origin: plan.origin,
    });
    await run.record({ subscription_oid: subscription.oid });
    run.log('info', 'init.subscription_created', {
      subscription: run.name,
      copy_data: plan.copyData,
      origin: plan.origin,
      prepared_slot: plan.preparedSlot ?? null,
      tables: plan.tables.length,
    });
    if (plan.preparedSlot) await preparedSlotConsumed(run, plan.preparedSlot);
  },

  // Looks at the subscription four times a second, so the end of the copy is
  // seen at once; reports (and so NOTIFYs) every second, and at once when a
  // table changes state.
  async copy(run) {
    const reports = new CopyReports(pollMs);
    // init_progress.workers_max holds the --parallel range (1-16); a server
    // set outside it is shown at the nearest end.
    const workersMax = Math.min(16, Math.max(1, await syncWorkerLimit(run.target)));
    let errorsAtStart: number | undefined;
    const planned = (await run.refresh()).tables;
    // A publication dropped, renamed or changed on the source shows nowhere
    // on the target, a subscription disabled there stalls the copy: looked
    // at on both sides at every report.
    const checkSource = () => checkWhileCopying(run, planned);
    await run.rememberPublication();
    for (;;) {
      run.checkpoint();
      // by oid: a subscription renamed on the target is still this one
      const sync = await pollSubscription(run.target, run.name, run.state.subscription_oid);
      if (!sync.found) {
        throw new SteepError(`the subscription ${run.name} no longer exists on node ${run.nodeId}`, undefined, 'cancel this init and start it again');
      }
      // an empty list is no finished copy (unless nothing was planned)
      const finished = sync.allReady && (sync.tables.length > 0 || planned.length === 0);
      // A table that cannot be copied (a constraint the source's rows break,
      // a column the target lacks) makes its worker fail and retry forever.
      errorsAtStart ??= sync.workerErrors;
      if (sync.workerErrors - errorsAtStart >= maxWorkerErrors) {
        await checkSource();
        const stuck = sync.tables.filter((t) => t.state !== 'done').map((t) => t.label);
        throw new SteepError(
          `the subscription's workers failed ${sync.workerErrors - errorsAtStart} times while copying; tables not yet copied: ${stuck.join(', ')}`,
          undefined,
          `the reason is in the target server's log (logical replication worker errors); fix it, then resume or cancel`,
        );
      }
      if (finished || reports.due(sync.tables)) {
        await checkSource();
        const progress = await run.report(sync.tables, { ...reports.stats, workers_active: sync.workersActive, workers_max: workersMax });
        if (finished) return;
        reports.reported(sync.tables, progress);
      }
      await run.pause(Math.min(250, pollMs));
    }
  },
};

export const init_snapshot = initTask(snapshot);
