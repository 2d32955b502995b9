// Manual initialization (SPEC 4.4, issue 12): the DBA copied the source
// with their own pg_dump (on the prepared slot's exported snapshot) or
// pg_basebackup (restored to stop right before the slot's LSN); steep-repl
// only makes the handover exact. The job comes with node complete
// (complete_init); the rest of the init's life is the common runner's
// (restoresData: nothing is copied, the target's rows stay).
//
//   check    the handover (lib/manual/handover.ts, the same check node
//            complete runs before it changes anything): refused with every
//            problem numbered and what to do; the handover point H recorded
//   start    node prepare's snapshot holder ended (the dump is taken: it
//            was restored here), the handover checked again on the freed
//            slot, then the subscription from the prepared slot (no copy,
//            no slot made) created disabled, its origin set to H, enabled
//   resume   the subscription exists: its origin set to H if it never
//            streamed, enabled
//
// The slot starts at its consistent LSN X; with --source-lsn L past X the
// origin makes the walsender skip every transaction whose commit record
// starts before L (and a slot that confirmed past L is refused).
import { SteepError } from '../../lib/errors';
import { shellWord } from '../../lib/format';
import { Backup, handoverProblems, numberedProblems } from '../../lib/manual/handover';
import { InitMethod, InitRun, initTask } from '../init/runner';
import { preparedSlotConsumed } from '../init/reverse-slot';
import { createSubscription, findSubscription, setSubscriptionEnabled, SubscriptionRow } from '../replication/subscription';

export class HandoverRefused extends SteepError {
  constructor(
    readonly problems: string[],
    hint: string,
    what: string,
  ) {
    super(`${what} refused, nothing was subscribed:\n${numberedProblems(problems)}`, undefined, hint);
    this.name = 'HandoverRefused';
  }
}

const manual: InitMethod = {
  restoresData: true,

  async check(run) {
    const given = sourceLsnOf(run);
    const h = await checkHandover(run, 'the handover');
    run.log('info', 'init.handover_checked', {
      backup: backupOf(run),
      slot_name: slotOf(run),
      consistent_lsn: h.slot?.lsn,
      handover_lsn: h.handoverLsn,
      source_lsn: given ?? null,
      snapshot_held: h.slot?.held_by_prepare ?? false,
      retained_bytes: h.slot?.retained_bytes,
    });
  },

  async started(run) {
    return !!(await findSubscription(run.target, run.name, run.state.subscription_oid));
  },

  async start(run, plan) {
    await releaseHolder(run);
    // the plan took a while: nothing may have moved the slot since its check
    const h = await checkHandover(run, 'the handover (checked again once the slot was free)');
    const slotName = slotOf(run);
    const subscription = await createSubscription(run.target, {
      name: run.name,
      conninfo: run.sourceConninfo(),
      publication: run.name,
      slotName,
      copyData: false,
      createSlot: false,
      origin: plan.origin,
      enabled: false,
    });
    await run.record({ subscription_oid: subscription.oid });
    run.log('info', 'init.subscription_created', {
      subscription: run.name,
      copy_data: false,
      slot_name: slotName,
      consistent_lsn: h.slot?.lsn,
      handover_lsn: h.handoverLsn,
      origin: plan.origin,
      tables: plan.tables.length,
      enabled: false,
    });
    await stream(run, subscription, h.handoverLsn!);
  },

  async resume(run) {
    const subscription = await findSubscription(run.target, run.name, run.state.subscription_oid);
    if (!subscription) throw new SteepError(`the subscription ${run.name} no longer exists on node ${run.nodeId}`, undefined, 'cancel this init and complete it again');
    if (!run.state.subscription_oid) await run.record({ subscription_oid: subscription.oid });
    const h = run.state.source_lsn;
    if (!h) throw new SteepError(`the init of ${run.nodeId} has a subscription but no recorded handover point`, undefined, 'cancel this init and prepare again');
    run.log('info', 'init.subscription_reused', { subscription: subscription.name, enabled: subscription.enabled, handover_lsn: h });
    await stream(run, subscription, h);
  },

  // no copying phase: the DBA's backup holds the rows
  async copy() {},
};

const backupOf = (run: InitRun): Backup => (run.state.backup ?? run.options.backup) as Backup;
const slotOf = (run: InitRun): string => run.state.slot_name ?? run.name;
// the option node complete was given (--source-lsn): complete_init records each request's own
function sourceLsnOf(run: InitRun): string | undefined {
  const option = run.options.source_lsn;
  return typeof option === 'string' && option ? option : undefined;
}

// The shared check on the source and this node; refused with the numbered
// problems. Records what it decided: H, the slot's LSN, the backup.
async function checkHandover(run: InitRun, what: string) {
  const backup = backupOf(run);
  if (backup !== 'pg_dump' && backup !== 'pg_basebackup') {
    throw new SteepError(`the manual init of ${run.nodeId} records no backup (pg_dump or pg_basebackup)`, undefined, 'cancel it and prepare again (steep-repl node prepare)');
  }
  const h = await run.withSource((source) =>
    handoverProblems(source, run.target, {
      targetNodeId: run.nodeId,
      sourceNodeId: run.sourceNode.node_id,
      slotName: slotOf(run),
      backup,
      sourceLsn: sourceLsnOf(run),
      recoveryEnd: run.state.recovery_end ?? undefined,
    }),
  );
  if (h.problems.length) throw new HandoverRefused(h.problems, h.hint, `${what} from ${run.sourceNode.node_id} to ${run.nodeId}`);
  await run.record({ source_lsn: h.handoverLsn, consistent_lsn: h.slot!.lsn, backup, slot_name: slotOf(run) });
  return h;
}

// pg_dump: node prepare's replication connection that made the slot still
// holds its exported snapshot (the slot is not active meanwhile: the
// holder is found by the snapshot's name). The dump was restored here, so
// it is taken: the holder is ended (its prepare says "released by node
// complete"), which lets the source's vacuum go on. A slot held by
// anything else was refused by the check.
async function releaseHolder(run: InitRun): Promise<void> {
  const slotName = slotOf(run);
  // ends it and waits until its snapshot is let go (terminate_prepare_holder.sql)
  const pid = await run.withSource(async (source) => (await source.query('SELECT steep_repl.terminate_prepare_holder($1) AS pid', [slotName])).rows[0].pid);
  if (!pid) return;
  run.log('info', 'init.snapshot_released', { slot_name: slotName, holder_pid: pid, reason: 'the dump was restored here: node prepare need not hold the snapshot any longer' });
}

// The subscription starts at H: its origin (pg_<oid>) says where, and the
// walsender starts there (or at the slot's confirmed position, whichever is
// later). Set only while the subscription never streamed: once it did, the
// origin is past H and must stay (going back would apply changes twice).
async function stream(run: InitRun, subscription: SubscriptionRow, h: string): Promise<void> {
  const origin = `pg_${subscription.oid}`;
  if (!subscription.enabled) {
    const { rows } = await run.target.query(
      `SELECT pg_replication_origin_progress($1, false)::text AS at,
              coalesce(pg_replication_origin_progress($1, false) < $2::pg_lsn, true) AS behind`,
      [origin, h],
    );
    if (rows[0].behind) {
      await run.target.query('SELECT pg_replication_origin_advance($1, $2::pg_lsn)', [origin, h]);
      run.log('info', 'init.origin_advanced', { origin, from: rows[0].at, to: h });
    }
    await setSubscriptionEnabled(run.target, subscription.name, true);
  }
  await preparedSlotConsumed(
    run,
    slotOf(run),
    `cancel this init (steep-repl node cancel ${shellWord(run.nodeId)}), then prepare again (steep-repl node prepare ${shellWord(run.nodeId)} --from ${shellWord(run.sourceNode.node_id)} --for ${backupOf(run)}) and take a new backup`,
  );
  const planned = (await run.refresh()).tables;
  await run.report(planned.map((t) => ({ schema_name: t.schema_name, table_name: t.table_name, state: 'done', rows_copied: 0 })));
}

export const init_manual = initTask(manual);
