// The life of every initialization, whatever copies the data: claim the job,
// plan (source tables, schema step, rows already on the target, the pair's
// publication), let the method copy, catch up from the slot, copy sequences,
// finish; fail with what to do next, pause on agent shutdown, and on cancel
// remove what was created. A method brings only its copy step (InitMethod).
// Killed at any moment, the next run resumes from the tables.
import { Client } from 'pg';
import { clientConfig, connect, ConnectionError, connectToNode, describeTarget, nodeConninfo, redactSecrets } from '../../lib/connection';
import { SteepError } from '../../lib/errors';
import { shellWord } from '../../lib/format';
import { backoff } from '../../lib/notifications';
import { emitEvent } from '../../lib/sql/emitEvent';
import { finishInit } from '../../lib/sql/finishInit';
import { getInitStatus, InitOptions, InitStatus, MethodState } from '../../lib/sql/getInitStatus';
import { getNode, RegisteredNode } from '../../lib/sql/getNode';
import type { ReinitState } from '../../lib/sql/listNodes';
import { getSlotLag } from '../../lib/sql/getSlotLag';
import { listReplicatedTables, ReplicatedTable } from '../../lib/sql/listReplicatedTables';
import { recordMethodState } from '../../lib/sql/recordMethodState';
import { PartReport, reportInitParts } from '../../lib/sql/reportInitParts';
import { ProgressStats, reportInitProgress, ReportedProgress, TableReport } from '../../lib/sql/reportInitProgress';
import { serverVersionNum } from '../../lib/sql/serverVersionNum';
import { setInitPhase } from '../../lib/sql/setInitPhase';
import { transitionNode } from '../../lib/sql/transitionNode';
import { isServerAway } from '../../lib/worker-pool';
import { truncateWithoutReplicating } from '../replication/origin';
import { ensurePublication, publicationExists } from '../replication/publication';
import { copySequences } from '../replication/sequences';
import { currentLsn } from '../replication/slot';
import {
  decideTopology,
  downstreamSlots,
  isReverseOfPair,
  publicationTables,
  readSourceSelf,
  readUpstreams,
  refuseIncompleteSource,
} from '../replication/topology';
import { findSubscription, restoreSyncWorkers, setSubscriptionEnabled } from '../replication/subscription';
import { tablesWithRows } from '../replication/target-tables';
import { SteepTask, TaskContext } from '../task';
import { cleanupInit } from './cleanup';
import { preparedSlotToUse, prepareReverseSlot } from './reverse-slot';
import { checkInitPrivileges } from './privileges';
import { mayExistOnSource, OnSource, onSourceObjects } from './existing-objects';
import { readSourcePublication, verifyStream } from './verify-stream';
import { classify, InitTimeout, isConnectionError, sourceGraceMs, withRetriedSource } from './failure';
import { syncTargetSchema } from './schema';
import { pause } from './wait';
import { endFullUnchanged, removePairReplication } from '../reinit/full';
import { verifyReinit } from '../reinit/verify';

const inProgress = ['preparing', 'copying', 'catching_up', 'reinitializing'];
export const pollMs = Number(process.env.STEEP_REPL_INIT_POLL_MS ?? 1000);

// What the common plan decided before the method copies.
export interface InitPlan {
  tables: ReplicatedTable[];
  // false for the reverse of an established pair: the source already holds
  // this node's data, so nothing is copied
  copyData: boolean;
  // the subscription's origin (topology.ts decideTopology); null: the
  // server has no such option
  origin: 'none' | 'any' | null;
  // the reverse of a pair subscribes through the slot the source prepared
  // when it became synchronized (init_slots): create_slot = false
  preparedSlot?: string;
}

// The steps only a method knows. Each must be safe to run again after the
// agent was killed in the middle of it.
export interface InitMethod {
  // Whether an earlier run already created what the copy works in: then the
  // plan is not made again (the target's rows are the copy's) and resume runs.
  started(run: InitRun): Promise<boolean>;
  // After the plan: create what copies and streams (for snapshot, the subscription).
  start(run: InitRun, plan: InitPlan): Promise<void>;
  resume(run: InitRun): Promise<void>;
  // The agent writes the copied rows itself (direct, two-phase): the plan
  // checks its role on the target may do what an apply worker does.
  agentCopies?: boolean;
  // The DBA copied the data (manual: their own pg_dump or base backup, taken
  // at the prepared slot's point): the plan copies nothing and leaves the
  // target's rows alone, and the publication must be the one made before
  // that slot (a new one would miss what was written since). The rest of the
  // plan (topology, identity, privileges, the schema step) runs as for any.
  restoresData?: boolean;
  // First of the plan, before the schema step and before anything is
  // created on either side: throws to refuse the init (two-phase verifies
  // its snapshot here), leaving both nodes as they were.
  check?(run: InitRun): Promise<void>;
  // Returns once every planned table is copied, reporting as it goes.
  copy(run: InitRun): Promise<void>;
}

// A cancel or a shutdown noticed at a checkpoint.
class Interrupted extends Error {}

// The job rides out a restart of its own server (the target): a run whose
// session to it was lost waits until the server is back and runs again
// from the tables, as a new agent would (the method resumes where it was).
// Only a shutdown of the agent ends the waiting; the agent itself gives up
// (exit 6) when its database stays away past --reconnect-timeout.
export function initTask(method: InitMethod): SteepTask {
  return async (payload, ctx) => {
    const nodeId = String(payload.node_id);
    for (let lostTimes = 0; ; ) {
      const target = await connectTarget(ctx, nodeId);
      if (lostTimes) ctx.logger.log('info', 'init.target_reconnected', { node_id: nodeId, job_id: ctx.jobId, times_lost: lostTimes });
      let lost = false;
      target.on('error', (err) => ctx.logger.log('warn', 'init.target_connection_error', { node_id: nodeId, error: err.message }));
      target.once('end', () => (lost = true));
      const run = new InitRun(nodeId, target, ctx);
      try {
        return await run.execute(method);
      } catch (err) {
        // An error on a session that still answers is the run's own.
        if (!lost && !(isConnectionError(err) && !(await answers(target)))) throw err;
        if (ctx.shutdown.aborted) throw err;
        lostTimes += 1;
        ctx.logger.log('warn', 'init.target_lost', {
          node_id: nodeId,
          job_id: ctx.jobId,
          error: (err as Error).message,
          note: 'the init continues from the tables once the database is back',
        });
      } finally {
        await run.close();
      }
    }
  };
}

async function answers(client: Client): Promise<boolean> {
  return client.query('SELECT 1').then(
    () => true,
    () => false,
  );
}

// The agent's database, waited for while it restarts (refused, starting up,
// shutting down); another failure (a password, a missing database) is not waited out.
async function connectTarget(ctx: TaskContext, nodeId: string): Promise<Client> {
  let warned = false;
  for (let attempt = 1; ; attempt++) {
    ctx.shutdown.throwIfAborted();
    const client = new Client(clientConfig(ctx.connectionString, 'steep-repl init'));
    client.on('error', () => undefined);
    try {
      await client.connect();
      return client;
    } catch (err) {
      await client.end().catch(() => undefined);
      if (!isServerAway(err)) throw new ConnectionError(describeTarget(ctx.connectionString), err as Error);
      if (!warned) {
        ctx.logger.log('warn', 'init.target_unreachable', { node_id: nodeId, job_id: ctx.jobId, error: (err as Error).message, retrying: true });
        warned = true;
      }
      await pause(backoff(attempt), [ctx.shutdown]);
    }
  }
}

// One run of an init job: what the method's steps use.
export class InitRun {
  sourceNode!: RegisteredNode;
  options!: InitOptions;
  state!: MethodState;
  // node reinit --full (agent/reinit/full.ts); null for an init
  reinit: ReinitState | null = null;
  private source?: Client;
  private startedAt = Date.now();
  readonly signals: AbortSignal[];

  constructor(
    readonly nodeId: string,
    readonly target: Client,
    private readonly ctx: TaskContext,
  ) {
    this.signals = [ctx.cancel, ctx.shutdown];
  }

  get name(): string {
    return this.state.replication_name;
  }

  async execute(method: InitMethod): Promise<void> {
    let status = await getInitStatus(this.target, this.nodeId);
    if (!status.progress || !status.method_state || !status.source_node_id) {
      this.log('warn', 'init.job_ignored', { reason: 'no initialization recorded for this node', state: status.state });
      return;
    }
    this.adopt(status);
    const since = this.reinit ? status.progress.started_at : status.started_at;
    this.startedAt = since ? new Date(since).getTime() : Date.now();
    this.sourceNode = await getNode(this.target, status.source_node_id);
    if (status.progress.cancel_requested_at) {
      if (await endFullUnchanged(this, 'cancelled')) return;
      return this.cancel(status);
    }
    if (!inProgress.includes(status.state)) {
      this.log('warn', 'init.job_ignored', { reason: `node is ${status.state}`, state: status.state });
      return;
    }
    this.log('info', 'init.job_started', { source_node: this.sourceNode.node_id, state: status.state, name: this.name });
    try {
      const copies = status.progress.phases.includes('copying');
      if (this.stage(status) === 'preparing') {
        await removePairReplication(this);
        if (await method.started(this)) await method.resume(this);
        else await method.start(this, await this.plan(method));
        if (copies) {
          await this.transition('copying', 'publication and subscription in place');
          await this.phase('copying');
        }
      }
      status = await this.refresh();
      if (this.stage(status) === 'copying') await method.copy(this);
      await this.catchUp();
      await this.finalize();
    } catch (err) {
      if (this.ctx.cancel.aborted || (await this.cancelRequested())) return this.cancel(await this.refresh());
      if (this.ctx.shutdown.aborted) {
        this.log('info', 'init.paused', { reason: 'agent stopping; the job resumes when an agent starts' });
        throw err;
      }
      if (await endFullUnchanged(this, 'failed', err as Error)) return;
      await this.fail(err as Error);
    }
  }

  // Where the init stands. A reinit --full stays reinitializing from start
  // to end (agent/reinit/full.ts): its phase tells.
  private stage(status: InitStatus): string {
    if (status.state !== 'reinitializing') return status.state;
    const phase = status.progress?.phase ?? 'preparing';
    if (phase === 'copying') return 'copying';
    return ['catching_up', 'finalizing', 'verifying'].includes(phase) ? 'catching_up' : 'preparing';
  }

  async close(): Promise<void> {
    await this.source?.end().catch(() => undefined);
    await this.target.end().catch(() => undefined);
  }

  // Common to every method: what the source replicates, the schema step,
  // the target's existing rows, the pair's publication.
  private async plan(method: InitMethod): Promise<InitPlan> {
    await method.check?.(this);
    this.checkpoint();
    // Where the source's data comes from and where this node's goes, before
    // anything is created: a cycle, an incomplete source, a pair that would
    // echo or lose changes are refused here.
    const self = await this.withSource(readSourceSelf);
    refuseIncompleteSource(self, this.sourceNode.node_id, this.nodeId);
    const topology = decideTopology({
      sourceId: this.sourceNode.node_id,
      targetId: this.nodeId,
      upstreams: await this.withSource(readUpstreams),
      targetDownstream: await downstreamSlots(this.target),
      sourceVersion: await this.withSource(serverVersionNum),
      targetVersion: await serverVersionNum(this.target),
    });
    if (topology.cascade) {
      this.log('info', 'init.cascade', {
        reason: `${this.sourceNode.node_id} receives changes from other nodes: subscribing with origin = ${topology.origin ?? 'any (the server default)'} so they arrive here too`,
      });
    }
    // a reinit copies even where the source holds this node's data: it is there to replace it
    const reverse = !this.reinit && isReverseOfPair(self, this.sourceNode.node_id, this.nodeId);
    const tables = await this.withSource(listReplicatedTables);
    const noIdentity = tables.filter((t) => !t.has_identity);
    if (noIdentity.length) {
      throw new SteepError(
        `${noIdentity.length} table(s) on the source have neither a primary key nor a replica identity, so their updates and deletes cannot replicate: ${describeTables(noIdentity)}`,
        undefined,
        'add a primary key, or ALTER TABLE ... REPLICA IDENTITY FULL (or USING INDEX), on the source, then start again',
      );
    }
    await this.withSource((source) => checkInitPrivileges({ source, target: this.target, sourceNodeId: this.sourceNode.node_id, targetNodeId: this.nodeId, tables, publication: this.name, agentCopies: method.agentCopies, advancesOrigin: method.restoresData }));
    // a manual init streams from the slot it prepared for its backup
    const preparedSlot = reverse && !method.restoresData ? await this.withSource((s) => preparedSlotToUse(this, s, tables)) : undefined;
    this.checkpoint();

    await this.phase('schema_sync');
    await this.withSource((source) =>
      syncTargetSchema({
        source,
        target: this.target,
        sourceNodeId: this.sourceNode.node_id,
        targetNodeId: this.nodeId,
        mode: this.options.schema_sync,
        logger: this.ctx.logger,
      }),
    );
    this.checkpoint();

    const copyData = !preparedSlot && !method.restoresData;
    if (method.restoresData) {
      this.log('info', 'init.data_restored', { reason: `the tables on ${this.nodeId} hold the DBA's copy of ${this.sourceNode.node_id}: nothing is copied and no rows are emptied` });
    } else if (copyData) {
      const withRows = await tablesWithRows(this.target, tables);
      if (withRows.length && !this.options.force) {
        throw new SteepError(
          `${withRows.length} table(s) on node ${this.nodeId} already hold rows: ${describeTables(withRows)}`,
          undefined,
          'empty them, or start with --force (options {"force": true}) to empty them on this node only, without that replicating',
        );
      }
      if (withRows.length) {
        await truncateWithoutReplicating(this.target, withRows);
        this.log('warn', 'init.tables_emptied', { tables: withRows.map((t) => t.label) });
      }
    } else {
      this.log('info', 'init.reverse_of_pair', {
        reason: `${this.sourceNode.node_id} is synchronized from ${this.nodeId}: both hold the same data, so nothing is copied`,
      });
    }
    await this.record({
      copy_data: copyData,
      reverse_of_pair: reverse,
      origin: topology.origin,
      prepared_slot: preparedSlot ?? null,
      ...(preparedSlot ? { slot_name: preparedSlot } : {}),
    });
    await this.report(tables.map((t) => ({ ...t, state: 'pending', rows_copied: 0 })));
    if (method.restoresData) await this.withSource((s) => requirePreparedPublication(s, this.name, tables, this.sourceNode.node_id, this.nodeId));
    else await this.withSource((s) => ensurePublication(s, this.name, tables));
    await this.rememberPublication();
    // Transactions older than the publication may still commit changes
    // pgoutput cannot match to it (it resolves publications with the
    // catalog as of each change): a method streaming from a slot made
    // before the publication waits for them to end (two-phase). Read after
    // it existed, so later than its creation when a re-plan finds it.
    const xmax = await this.withSource(async (s) => (await s.query('SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS xmax')).rows[0].xmax);
    await this.record({ publication_xmax: xmax });
    return { tables, copyData, origin: topology.origin, preparedSlot };
  }

  // Every method ends streaming from a slot: synchronized once the slot has
  // confirmed the source's position taken when the copy was complete, and
  // the stream was checked before and after (verifyStream): the publication
  // as planned, the subscription enabled and ready, the slot in use.
  private async catchUp(): Promise<void> {
    const status = await this.refresh();
    if (this.stage(status) !== 'catching_up') {
      await this.transition('catching_up', this.state.copy_data === false ? 'nothing to copy: streaming from the slot' : 'every table copied');
      await this.phase('catching_up');
    }
    await this.rememberPublication();
    await verifyStream(this, status.tables, 'after the copy');
    let lsnTarget = this.state.lsn_target;
    if (!lsnTarget) {
      lsnTarget = await this.withSource(currentLsn);
      await this.record({ lsn_target: lsnTarget });
    }
    const slot = this.state.slot_name ?? this.name;
    let reportedAt = 0;
    for (;;) {
      this.checkpoint();
      const lag = await this.withSource((s) => getSlotLag(s, slot, lsnTarget));
      if (!lag.slot_exists) {
        throw new SteepError(`the slot ${slot} no longer exists on source node ${this.sourceNode.node_id}`, undefined, 'cancel this init and start it again');
      }
      const lagBytes = lag.lag_bytes === null ? null : Number(lag.lag_bytes);
      const caughtUp = lag.reached && (lagBytes ?? Infinity) <= this.options.lag_threshold_bytes;
      if (caughtUp || Date.now() - reportedAt >= pollMs) {
        await this.report([], { lag_bytes: lagBytes, workers_active: 0, eta_seconds: null });
        reportedAt = Date.now();
      }
      if (caughtUp) {
        await verifyStream(this, status.tables, 'after catch-up', lsnTarget);
        this.log('info', 'init.caught_up', { lsn_target: lsnTarget, confirmed_lsn: lag.confirmed_lsn, lag_bytes: lagBytes });
        return;
      }
      await this.pause(Math.min(pollMs, 250));
    }
  }

  // The publication's oid and its tables' oids as the plan made them, so
  // later checks tell a rename on the source from a drop (kept once recorded).
  async rememberPublication(): Promise<void> {
    if (this.state.source_publication) return;
    const publication = await this.withSource((s) => readSourcePublication(s, this.name));
    if (publication) await this.record({ source_publication: publication });
  }

  private async finalize(): Promise<void> {
    await this.phase('finalizing');
    const sequences = await this.withSource((s) => copySequences(s, this.target));
    if (sequences.missing.length) this.log('warn', 'init.sequences_missing', { sequences: sequences.missing });
    await this.restoreServerSettings();
    if (this.reinit) {
      const verifyId = await verifyReinit(this.target, this.nodeId, this.sourceNode.node_id);
      this.log('info', 'reinit.verify_started', { verify_id: verifyId, sequences_copied: sequences.copied.length });
      return;
    }
    const reverseSlot = await prepareReverseSlot(this);
    await finishInit(this.target, this.nodeId, {
      outcome: 'completed',
      details: {
        subscription: this.name,
        sequences_copied: sequences.copied.length,
        sequences_missing: sequences.missing,
        reverse_slot: reverseSlot ?? null,
      },
    });
  }

  // What the retry needs stays; a disabled subscription stops retrying
  // against a source that is gone. What exists on the source is looked at
  // (or said to be unchecked); SQL words the message and the way on.
  private async fail(err: Error): Promise<void> {
    const hint = (err as SteepError).hint ?? (err as { hint?: string }).hint ?? serverConnectionHint(err, this.sourceNode);
    const subscription = await findSubscription(this.target, this.name, this.state.subscription_oid).catch(() => undefined);
    if (subscription) await setSubscriptionEnabled(this.target, subscription.name, false).catch(() => undefined);
    await this.restoreServerSettings();
    const onSource = await this.lookAtSource(subscription?.oid);
    await finishInit(this.target, this.nodeId, {
      outcome: 'failed',
      error: redactSecrets(err.message),
      kind: classify(err),
      hint: hint && redactSecrets(hint),
      on_source: onSource,
    });
    if (this.reinit) await emitEvent(this.target, 'reinit.failed', this.nodeId, { scope: 'full', changed: true, error: redactSecrets(err.message) });
  }

  private async cancel(status: InitStatus): Promise<void> {
    if (status.state !== 'uninitialized') await this.phase('cancelling').catch(() => undefined);
    try {
      await this.liveSource();
    } catch (err) {
      this.log('warn', 'init.cancel_source_unreachable', { error: redactSecrets((err as Error).message) });
    }
    // before finish_init, which removes the method state that remembers it
    await this.restoreServerSettings();
    const result = await cleanupInit({ target: this.target, source: this.source, state: this.state, tables: status.tables });
    if (result.leftOnSource.length || result.leftOnTarget.length) {
      this.log('warn', 'init.cancel_left_behind', {
        source_checked: result.sourceChecked,
        left_on_source: result.leftOnSource,
        left_on_target: result.leftOnTarget,
        source_error: result.sourceError,
      });
    }
    await finishInit(this.target, this.nodeId, {
      outcome: 'cancelled',
      details: {
        removed: result.removed,
        left_on_source: result.leftOnSource,
        left_on_target: result.leftOnTarget,
        source_checked: result.sourceChecked,
      },
    });
    if (this.reinit) await emitEvent(this.target, 'reinit.cancelled', this.nodeId, { scope: 'full', changed: true, state: 'uninitialized' });
  }

  // What of this init is on the source now, looked at once (no grace
  // period: the init is ending), or why it could not be.
  private async lookAtSource(subscriptionOid?: number | null): Promise<OnSource> {
    try {
      const source = await this.liveSource();
      return { checked: true, objects: await onSourceObjects(source, this.state, subscriptionOid) };
    } catch (err) {
      return { checked: false, objects: [], error: redactSecrets((err as Error).message), may_exist: mayExistOnSource(this.state, subscriptionOid) };
    }
  }

  // The source session if it still answers, else one new attempt: an init
  // that ends looks at the source once, without the grace period. Leaves
  // this.source unset when the source cannot be reached.
  private async liveSource(): Promise<Client> {
    if (this.source) {
      const alive = await this.source.query('SELECT 1').then(() => true, () => false);
      if (alive) return this.source;
      await this.source.end().catch(() => undefined);
      this.source = undefined;
    }
    return this.connectSource();
  }

  // --parallel changed a server-wide setting of the target: put it back.
  private async restoreServerSettings(): Promise<void> {
    if (this.state.sync_workers_before === null || this.state.sync_workers_before === undefined) return;
    try {
      const restored = await restoreSyncWorkers(this.target, this.state, this.options.parallel);
      if (restored && 'skipped' in restored) {
        this.log('warn', 'init.server_setting_kept', { setting: 'max_sync_workers_per_subscription', reason: restored.skipped });
      } else if (restored) {
        this.log('info', 'init.server_setting_restored', { ...restored });
      }
      await this.record({ sync_workers_before: null, sync_workers_before_altered: null });
    } catch (err) {
      this.log('warn', 'init.server_setting_restore_failed', {
        setting: 'max_sync_workers_per_subscription',
        to: this.state.sync_workers_before,
        error: (err as Error).message,
      });
    }
  }

  // The init as the tables have it now; the method state and options with it.
  async refresh(): Promise<InitStatus> {
    const status = await getInitStatus(this.target, this.nodeId);
    this.adopt(status);
    return status;
  }

  private adopt(status: InitStatus): void {
    // a reinit's record stays after it ended: only one in progress counts
    this.reinit = status.state === 'reinitializing' ? (status.progress?.reinit ?? null) : null;
    if (status.progress) this.options = status.progress.options;
    if (status.method_state) this.state = status.method_state;
  }

  // Asked after an error; a target that is gone answers no.
  private async cancelRequested(): Promise<boolean> {
    const status = await getInitStatus(this.target, this.nodeId).catch(() => undefined);
    return !!status?.progress?.cancel_requested_at;
  }

  // Between two steps: a cancel, a shutdown or the timeout ends the run here.
  checkpoint(): void {
    if (this.ctx.cancel.aborted) throw new Interrupted('cancelled');
    if (this.ctx.shutdown.aborted) throw new Interrupted('agent stopping');
    const timeout = this.options.timeout;
    if (timeout && Date.now() - this.startedAt > timeout * 1000) throw new InitTimeout(timeout);
  }

  pause(ms: number): Promise<void> {
    return pause(ms, this.signals);
  }

  // A cancel requested from SQL is seen in the row every report returns.
  async report(tables: TableReport[], stats: ProgressStats = {}): Promise<ReportedProgress> {
    const progress = await reportInitProgress(this.target, this.nodeId, tables, stats);
    if (progress.cancel_requested_at) throw new Interrupted('cancel requested');
    return progress;
  }

  // A method that copies in parts reports them; the tables' progress follows from them.
  async reportParts(parts: PartReport[], stats: ProgressStats = {}): Promise<ReportedProgress> {
    const progress = await reportInitParts(this.target, this.nodeId, parts, stats);
    if (progress.cancel_requested_at) throw new Interrupted('cancel requested');
    return progress;
  }

  async record(facts: Partial<Omit<MethodState, 'updated_at'>>): Promise<void> {
    await recordMethodState(this.target, this.nodeId, facts);
    this.state = { ...this.state, ...facts } as MethodState;
  }

  async transition(to: string, reason: string): Promise<void> {
    if (this.reinit) return;
    await transitionNode(this.target, this.nodeId, to, reason);
  }

  async phase(phase: string): Promise<void> {
    await setInitPhase(this.target, this.nodeId, phase);
  }

  // The agent's database as the agent reaches it (a URL, or the PG* environment when unset).
  get targetConnectionString(): string | undefined {
    return this.ctx.connectionString;
  }

  // Another session to the target (a copy worker's); the signal ends it.
  connectTarget(applicationName: string, signal?: AbortSignal): Promise<Client> {
    return connect(clientConfig(this.ctx.connectionString, applicationName), describeTarget(this.ctx.connectionString), signal);
  }

  // The source as a libpq conninfo for a server-side subscription (no password).
  sourceConninfo(): string {
    return nodeConninfo(this.sourceNode);
  }

  private async connectSource(): Promise<Client> {
    const client = await connectToNode(this.sourceNode, 'steep-repl init');
    client.on('error', (err) => this.log('warn', 'init.source_connection_error', { error: err.message }));
    this.source = client;
    return client;
  }

  // Runs fn on the source, reconnecting while the source is away; after the
  // grace period the init fails with SourceUnreachable.
  withSource<T>(fn: (source: Client) => Promise<T>): Promise<T> {
    return withRetriedSource(
      {
        node: this.sourceNode,
        current: () => this.source,
        open: () => this.connectSource(),
        drop: async () => {
          await this.source?.end().catch(() => undefined);
          this.source = undefined;
        },
        wait: async () => {
          await this.pause(1000);
          this.checkpoint();
        },
        away: (where, err) => this.log('warn', 'init.source_unreachable', { source: where, error: err.message, retry_for_ms: sourceGraceMs }),
      },
      fn,
    );
  }

  log(level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown> = {}): void {
    this.ctx.logger.log(level, event, { node_id: this.nodeId, job_id: this.ctx.jobId, ...fields });
  }
}

// The publication a restored copy streams through was made before the slot
// the copy was taken at (node prepare): it must still be there, covering
// what the source replicates now. It is never made here: one made now would
// not carry the changes written since the slot.
async function requirePreparedPublication(source: Client, name: string, tables: ReplicatedTable[], sourceId: string, targetId: string): Promise<void> {
  const again = `cancel this init (steep-repl node cancel ${shellWord(targetId)}), then prepare again and take a new backup`;
  if (!(await publicationExists(source, name))) {
    throw new SteepError(
      `the publication ${name} that node prepare made on source node ${sourceId} no longer exists: one made now would not carry the changes written since the prepared slot`,
      undefined,
      again,
    );
  }
  const published = await publicationTables(source, name);
  const planned = tables.map((t) => t.label).sort();
  if (published.join('\n') !== planned.join('\n')) {
    throw new SteepError(
      `the publication ${name} on source node ${sourceId} covers ${published.join(', ') || 'no tables'}, but ${sourceId} now replicates ${planned.join(', ') || 'no tables'} (a table was added, removed or changed its identity since node prepare)`,
      undefined,
      again,
    );
  }
}

export function describeTables(tables: Array<{ label: string }>): string {
  const names = tables.map((t) => t.label);
  return names.length > 20 ? `${names.slice(0, 20).join(', ')} and ${names.length - 20} more` : names.join(', ');
}

// A subscription's connection is made by the target's server, not by the
// agent: a password the agent has (PGPASSWORD, its pgpass) does not reach it.
function serverConnectionHint(err: Error, source: RegisteredNode): string | undefined {
  if (!/could not connect to the publisher/.test(err.message) || !/password/i.test(err.message)) return undefined;
  return (
    `the target's PostgreSQL server connects to source node ${source.node_id} itself (the subscription)${source.user ? ` as user ${source.user}` : ''}, ` +
    'with no password from steep-repl: put the password in the pgpass file of the OS user the target server runs as ' +
    "(or let that connection in without one in the source's pg_hba.conf), then resume"
  );
}
