// Direct initialization (SPEC 4.3): steep-repl copies every table itself on
// one exported snapshot, in parts served by parallel workers (agent/copy),
// then subscribes from the snapshot's slot. The rest of the init's life is
// the common runner's. See docs/init.md, "Direct".
//
// Resume: the snapshot is held by a process of its own (copy/holder.ts), so
// an agent killed mid-copy is followed by one that continues on the same
// snapshot: done parts stay, a part cut off was rolled back and is copied
// again. Without the snapshot (the holder ended) the tables complete on it
// are kept and the others go to PostgreSQL's table sync (copy/handover.ts).
import { SteepError } from '../../lib/errors';
import { tableLabel as label } from '../../lib/identifiers';
import { listInitParts, planInitParts, resyncInitParts } from '../../lib/sql/initParts';
import { ReplicatedTable } from '../../lib/sql/listReplicatedTables';
import { sameTable, TableName } from '../../lib/sql/queryable';
import { InitMethod, InitPlan, InitRun, initTask } from '../init/runner';
import { preparedSlotConsumed } from '../init/reverse-slot';
import { isConnectionError } from '../init/failure';
import { handOver } from '../copy/handover';
import { HeldSnapshot, holdSeconds, importSnapshot, snapshotAlive, startHolder } from '../copy/holder';
import { planParts } from '../copy/parts';
import { snapshotReader, SnapshotLost } from '../copy/snapshot-source';
import { copyParts } from '../copy/workers';
import { dropSlot, findSlots } from '../replication/slot';
import { createSubscription, findSubscription } from '../replication/subscription';

const defaultParallel = 4;
// Runs of the copy that may end on a lost source session while the snapshot lives.
const copyAttempts = 3;

// Holders this agent started, by node: released as soon as the copy on
// their snapshot is over (a later agent's holder ends by itself then).
const holders = new Map<string, HeldSnapshot>();

const direct: InitMethod = {
  agentCopies: true,

  async started(run) {
    return !!run.state.consistent_lsn || !!(await findSubscription(run.target, run.name, run.state.subscription_oid));
  },

  async start(run, plan) {
    if (plan.preparedSlot) return subscribeThroughPreparedSlot(run, plan);
    await exportSnapshot(run, plan.tables);
  },

  // Killed after the slot was made: the parts may still need planning.
  async resume(run) {
    if (await findSubscription(run.target, run.name, run.state.subscription_oid)) {
      if (run.state.prepared_slot) await preparedSlotConsumed(run, run.state.prepared_slot);
      return;
    }
    if ((await listInitParts(run.target, run.nodeId)).length) return;
    const tables = (await run.refresh()).tables;
    const name = run.state.snapshot_name;
    const alive = !!name && (await run.withSource((s) => snapshotAlive(s, name)));
    await planOn(run, tables, alive ? name : null);
  },

  async copy(run) {
    if (run.state.copy_data === false) return;
    let parts = await listInitParts(run.target, run.nodeId);
    const parallel = Number(run.options.parallel ?? defaultParallel);
    for (let attempt = 1; parts.some((p) => p.state === 'pending' || p.state === 'copying'); attempt++) {
      const name = run.state.snapshot_name;
      if (!name || !(await run.withSource((s) => snapshotAlive(s, name)))) break;
      try {
        await copyParts(run, snapshotReader(run, name), parts, parallel);
      } catch (err) {
        run.checkpoint();
        if (!(err instanceof SnapshotLost) && !isConnectionError(err)) throw err;
        if (attempt >= copyAttempts) throw err;
        run.log('warn', 'init.copy_interrupted', { error: (err as Error).message, attempt });
      }
      parts = await listInitParts(run.target, run.nodeId);
    }
    await releaseSnapshot(run);
    let resync: TableName[] = [];
    if (parts.some((p) => p.state !== 'done' && p.state !== 'resynced')) {
      resync = await resyncInitParts(run.target, run.nodeId);
      run.log('warn', 'init.snapshot_lost', {
        reason: 'the exported snapshot ended before every part was copied on it',
        kept: [...new Set(parts.filter((p) => !resync.some((t) => sameTable(t, p))).map(label))],
        resync: resync.map(label),
        note: 'tables complete on the snapshot are kept; the others are emptied and copied again by PostgreSQL table sync',
      });
    }
    await handOver(run, resync);
  },
};

// The slot with its snapshot, made by the holder; then the parts, planned on it.
async function exportSnapshot(run: InitRun, tables: ReplicatedTable[]): Promise<void> {
  const slotName = run.state.slot_name ?? run.name;
  // left by a run killed before it recorded the slot: no subscription uses it
  for (const slot of await run.withSource((s) => findSlots(s, [slotName]))) {
    await run.withSource((s) => dropSlot(s, slot));
    run.log('warn', 'init.stale_slot_dropped', { slot_name: slotName });
  }
  const held = await startHolder({
    nodeId: run.nodeId,
    source: run.sourceNode,
    slotName,
    target: run.targetConnectionString,
    holdSeconds,
  });
  holders.set(run.nodeId, held);
  await run.record({ slot_name: held.slotName, consistent_lsn: held.consistentLsn, snapshot_name: held.snapshotName });
  run.log('info', 'init.snapshot_exported', { slot_name: held.slotName, consistent_lsn: held.consistentLsn, snapshot: held.snapshotName, holder_pid: held.pid });
  await planOn(run, tables, held.snapshotName);
}

// Planned on the snapshot when there is one (the key ranges are then the
// snapshot's); without it the plan only records the tables to sync again.
async function planOn(run: InitRun, tables: TableName[], snapshotName: string | null): Promise<void> {
  const rule = {
    threshold: Number(run.options.split_tables_larger_than ?? 1024 ** 3),
    maxParts: Number(run.options.max_parts ?? 32),
  };
  const parts = await run.withSource(async (source) => {
    if (!snapshotName) return planParts(source, tables, { threshold: Infinity, maxParts: 1 });
    await importSnapshot(source, snapshotName);
    try {
      return await planParts(source, tables, rule);
    } finally {
      await source.query('ROLLBACK');
    }
  });
  const count = await planInitParts(run.target, run.nodeId, parts);
  const split = [...new Set(parts.filter((p) => p.part_count > 1).map((p) => `${label(p)} (${p.split}, ${p.part_count})`))];
  run.log('info', 'init.parts_planned', { parts: count, split, threshold: rule.threshold, max_parts: rule.maxParts });
  if (!count && tables.length) throw new SteepError(`no parts were planned for ${tables.length} table(s)`);
}

// The copy on the snapshot is over: the holder may let it go.
async function releaseSnapshot(run: InitRun): Promise<void> {
  if (run.state.snapshot_name) await run.record({ snapshot_name: null });
  holders.get(run.nodeId)?.release();
  holders.delete(run.nodeId);
}

// The reverse of a pair copies nothing: it streams through the slot the source prepared.
async function subscribeThroughPreparedSlot(run: InitRun, plan: InitPlan): Promise<void> {
  const subscription = await createSubscription(run.target, {
    name: run.name,
    conninfo: run.sourceConninfo(),
    publication: run.name,
    slotName: plan.preparedSlot!,
    copyData: false,
    createSlot: false,
    origin: plan.origin,
  });
  await run.record({ subscription_oid: subscription.oid });
  run.log('info', 'init.subscription_created', { subscription: run.name, copy_data: false, prepared_slot: plan.preparedSlot, tables: plan.tables.length });
  await preparedSlotConsumed(run, plan.preparedSlot!);
  await run.report(plan.tables.map((t) => ({ schema_name: t.schema_name, table_name: t.table_name, state: 'done', rows_copied: 0 })));
}


export const init_direct = initTask(direct);
