// Snapshot initialization of this node from a source (SPEC §4.2): schema
// sync, the per-pair publication and a copy_data subscription, progress
// every second, catch-up, sequences. Killed at any moment it resumes from
// the tables (the subscription keeps copying meanwhile); cancelled, it
// removes everything it created.
import { Client } from 'pg';
import { connectTo, connectToNode, getNode, nodeConninfo, RegisteredNode } from '../../lib/connection';
import { SteepError } from '../../lib/errors';
import { shellWord } from '../../lib/format';
import { tableLabel } from '../../lib/schema-sync';
import { currentLsn, slotLag } from '../init/catch-up';
import { cleanupInit } from '../init/cleanup';
import { classify, InitTimeout, isConnectionError, SourceUnreachable } from '../init/failure';
import { pollSubscription, RateMeter, TableReport } from '../init/progress';
import { ensurePublication } from '../init/publication';
import { syncTargetSchema } from '../init/schema';
import { copySequences } from '../init/sequences';
import { listSourceTables, SourceTable } from '../init/source-tables';
import { isReverseOfPair, readSourceSelf } from '../init/source-state';
import { applyParallel, createSubscription, findSubscription, setSubscriptionEnabled, syncWorkerLimit } from '../init/subscription';
import { tablesWithRows, truncateWithoutReplicating } from '../init/target-tables';
import { literal } from '../init/quoting';
import { pause } from '../init/wait';
import { SteepTask, TaskContext } from '../task';

interface InitOptions {
  parallel: number | null;
  schema_sync: 'strict' | 'auto' | 'manual';
  force: boolean;
  timeout: number | null;
  lag_threshold_bytes: number;
}

interface InitStatus {
  state: string;
  source_node_id: string | null;
  started_at: string | null;
  progress: {
    options: InitOptions;
    cancel_requested_at: string | null;
    rows_copied: string;
    bytes_copied: string;
    bytes_total: string | null;
  } | null;
  method_state: { replication_name: string; lsn_target: string | null; copy_data: boolean | null; subscription_oid: number | null } | null;
  tables: Array<{ schema_name: string; table_name: string }>;
}

const inProgress = ['preparing', 'copying', 'catching_up'];
const pollMs = Number(process.env.STEEP_REPL_INIT_POLL_MS ?? 1000);
// How long the source may be unreachable before the init fails.
const sourceGraceMs = Number(process.env.STEEP_REPL_SOURCE_GRACE_MS ?? 15000);

// Worker errors tolerated during the copy before the init fails.
const maxWorkerErrors = Number(process.env.STEEP_REPL_MAX_WORKER_ERRORS ?? 3);

class Interrupted extends Error {}

export const init_snapshot: SteepTask = async (payload, ctx) => {
  const target = await connectTo(ctx.connectionString, 'steep-repl init');
  target.on('error', (err) => ctx.logger.log('warn', 'init.target_connection_error', { error: err.message }));
  const run = new SnapshotInit(String(payload.node_id), target, ctx);
  try {
    await run.execute();
  } finally {
    await run.close();
  }
};

class SnapshotInit {
  private source?: Client;
  private sourceNode?: RegisteredNode;
  private name = '';
  private options!: InitOptions;
  private startedAt = Date.now();
  private readonly signals: AbortSignal[];

  constructor(
    private readonly nodeId: string,
    private readonly target: Client,
    private readonly ctx: TaskContext,
  ) {
    this.signals = [ctx.cancel, ctx.shutdown];
  }

  async execute(): Promise<void> {
    let status = await this.status();
    if (!status.progress || !status.source_node_id) {
      this.log('warn', 'init.job_ignored', { reason: 'no initialization recorded for this node', state: status.state });
      return;
    }
    this.name = status.method_state!.replication_name;
    this.options = status.progress.options;
    this.startedAt = status.started_at ? new Date(status.started_at).getTime() : Date.now();
    this.sourceNode = await getNode(this.target, status.source_node_id);
    if (status.progress.cancel_requested_at) return this.cancel(status);
    if (!inProgress.includes(status.state)) {
      this.log('warn', 'init.job_ignored', { reason: `node is ${status.state}`, state: status.state });
      return;
    }
    this.log('info', 'init.job_started', { source_node: this.sourceNode.node_id, state: status.state, name: this.name });
    try {
      if (status.state === 'preparing') await this.prepare();
      status = await this.status();
      if (status.state === 'copying') await this.copy();
      await this.catchUp();
      await this.finalize();
    } catch (err) {
      if (this.ctx.cancel.aborted || (await this.cancelRequested())) return this.cancel(await this.status());
      if (this.ctx.shutdown.aborted) {
        this.log('info', 'init.paused', { reason: 'agent stopping; the job resumes when an agent starts' });
        throw err;
      }
      await this.fail(err as Error);
    }
  }

  async close(): Promise<void> {
    await this.source?.end().catch(() => undefined);
    await this.target.end().catch(() => undefined);
  }

  private async prepare(): Promise<void> {
    const existing = await findSubscription(this.target, this.name);
    if (existing) {
      // A resumed or restarted init: the subscription holds the work done.
      if (!existing.enabled) await setSubscriptionEnabled(this.target, this.name, true);
      this.log('info', 'init.subscription_reused', { subscription: this.name });
    } else {
      const self = await this.withSource(readSourceSelf);
      const reverse = isReverseOfPair(self, this.sourceNode!.node_id, this.nodeId);
      const tables = await this.withSource(listSourceTables);
      const noIdentity = tables.filter((t) => !t.has_identity);
      if (noIdentity.length) {
        throw new SteepError(
          `${noIdentity.length} table(s) on the source have neither a primary key nor a replica identity, so their updates and deletes cannot replicate: ${describeTables(noIdentity)}`,
          undefined,
          'add a primary key, or ALTER TABLE ... REPLICA IDENTITY FULL (or USING INDEX), on the source, then start again',
        );
      }
      this.checkpoint();

      await this.phase('schema_sync');
      await this.withSource((source) =>
        syncTargetSchema({
          source,
          target: this.target,
          sourceNodeId: this.sourceNode!.node_id,
          targetNodeId: this.nodeId,
          mode: this.options.schema_sync,
          logger: this.ctx.logger,
        }),
      );
      this.checkpoint();

      const copyData = !reverse;
      if (copyData) {
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
          this.log('warn', 'init.tables_emptied', { tables: withRows.map(tableLabel) });
        }
      } else {
        this.log('info', 'init.reverse_of_pair', {
          reason: `${this.sourceNode!.node_id} is synchronized from ${this.nodeId}: both hold the same data, so nothing is copied`,
        });
      }
      await this.recordOptions({ copy_data: copyData, reverse_of_pair: reverse });
      await this.report(
        tables.map((t) => ({ ...t, state: 'pending', rows_copied: 0 })),
        {},
      );

      await this.withSource((s) => ensurePublication(s, this.name, tables));
      const parallel = await applyParallel(this.target, this.options.parallel);
      if (parallel.changedFrom !== undefined) {
        this.log('warn', 'init.server_setting_changed', {
          setting: 'max_sync_workers_per_subscription',
          from: parallel.changedFrom,
          to: parallel.workersMax,
          note: 'server-wide: applies to every subscription on this server',
        });
      }
      await createSubscription(this.target, this.name, nodeConninfo(this.sourceNode!), copyData);
      await this.recordOptions({ subscription_oid: (await findSubscription(this.target, this.name))?.oid });
      this.log('info', 'init.subscription_created', { subscription: this.name, copy_data: copyData, tables: tables.length });
    }
    await this.transition('copying', 'publication and subscription in place');
    await this.phase('copying');
  }

  // Looks at the subscription four times a second, so the end of the copy
  // is seen at once; reports (and so NOTIFYs) every second, and at once
  // when a table changes state.
  private async copy(): Promise<void> {
    const meter = new RateMeter();
    let stats: Record<string, number | null> = {};
    let reportedAt = 0;
    let reportedStates = '';
    // init_progress.workers_max holds the --parallel range (1-16); a server
    // set outside it is shown at the nearest end.
    const workersMax = await syncWorkerLimit(this.target);
    let errorsAtStart: number | undefined;
    for (;;) {
      this.checkpoint();
      const snapshot = await pollSubscription(this.target, this.name);
      if (!snapshot.tables.length && !(await findSubscription(this.target, this.name))) {
        throw new SteepError(`the subscription ${this.name} no longer exists on node ${this.nodeId}`, undefined, 'cancel this init and start it again');
      }
      // A table that cannot be copied (a constraint the source's rows break,
      // a column the target lacks) makes its worker fail and retry forever.
      errorsAtStart ??= snapshot.workerErrors;
      if (snapshot.workerErrors - errorsAtStart >= maxWorkerErrors) {
        await this.withSource((s) => s.query('SELECT 1'));
        const stuck = snapshot.tables.filter((t) => t.state !== 'done').map(tableLabel);
        throw new SteepError(
          `the subscription's workers failed ${snapshot.workerErrors - errorsAtStart} times while copying; tables not yet copied: ${stuck.join(', ')}`,
          undefined,
          `the reason is in the target server's log (logical replication worker errors); fix it, then resume or cancel`,
        );
      }
      const states = snapshot.tables.map((t) => t.state).join();
      if (Date.now() - reportedAt >= pollMs || states !== reportedStates || snapshot.allReady) {
        await this.withSource((s) => s.query('SELECT 1'));
        const progress = await this.report(snapshot.tables, { ...stats, workers_active: snapshot.workersActive, workers_max: Math.min(16, Math.max(1, workersMax)) });
        if (progress.cancel_requested_at) throw new Interrupted('cancel requested');
        if (snapshot.allReady) return;
        reportedAt = Date.now();
        reportedStates = states;
        meter.update(Number(progress.rows_copied), Number(progress.bytes_copied));
        stats = {
          rows_per_second: Math.round(meter.rowsPerSecond),
          bytes_per_second: Math.round(meter.bytesPerSecond),
          eta_seconds: meter.eta(Number(progress.bytes_total ?? 0) - Number(progress.bytes_copied)),
        };
      }
      await pause(Math.min(250, pollMs), this.signals);
    }
  }

  private async catchUp(): Promise<void> {
    const status = await this.status();
    if (status.state === 'copying') {
      await this.transition('catching_up', 'every table copied');
      await this.phase('catching_up');
    }
    let lsnTarget = status.method_state!.lsn_target;
    if (!lsnTarget) {
      lsnTarget = await this.withSource(currentLsn);
      await this.recordOptions({ lsn_target: lsnTarget });
    }
    let reportedAt = 0;
    for (;;) {
      this.checkpoint();
      const lag = await this.withSource((s) => slotLag(s, this.name, lsnTarget!));
      if (lag.confirmedLsn === null) {
        throw new SteepError(`the slot ${this.name} no longer exists on source node ${this.sourceNode!.node_id}`, undefined, 'cancel this init and start it again');
      }
      const caughtUp = lag.reached && (lag.lagBytes ?? Infinity) <= this.options.lag_threshold_bytes;
      if (caughtUp || Date.now() - reportedAt >= pollMs) {
        const progress = await this.report([], { lag_bytes: lag.lagBytes, workers_active: 0, eta_seconds: null });
        if (progress.cancel_requested_at) throw new Interrupted('cancel requested');
        reportedAt = Date.now();
      }
      if (caughtUp) {
        this.log('info', 'init.caught_up', { lsn_target: lsnTarget, confirmed_lsn: lag.confirmedLsn, lag_bytes: lag.lagBytes });
        return;
      }
      await pause(Math.min(pollMs, 250), this.signals);
    }
  }

  private async finalize(): Promise<void> {
    await this.phase('finalizing');
    const sequences = await this.withSource((s) => copySequences(s, this.target));
    if (sequences.missing.length) this.log('warn', 'init.sequences_missing', { sequences: sequences.missing });
    await this.target.query('SELECT steep_repl.finish_init($1, $2, $3)', [
      this.nodeId,
      'completed',
      { subscription: this.name, sequences_copied: sequences.copied.length, sequences_missing: sequences.missing },
    ]);
  }

  // The subscription and the publication stay for the retry; a disabled
  // subscription stops retrying against a source that is gone.
  private async fail(err: Error): Promise<void> {
    const kind = classify(err);
    const hint = (err as SteepError).hint ?? (err as { hint?: string }).hint;
    if (await findSubscription(this.target, this.name).catch(() => undefined)) {
      await setSubscriptionEnabled(this.target, this.name, false).catch(() => undefined);
    }
    await this.target.query('SELECT steep_repl.finish_init($1, $2, $3)', [this.nodeId, 'failed', { error: err.message, kind, hint }]);
  }

  private async cancel(status: InitStatus): Promise<void> {
    if (status.state !== 'uninitialized') {
      await this.target.query('SELECT steep_repl.init_phase($1, $2)', [this.nodeId, 'cancelling']).catch(() => undefined);
    }
    if (!this.source) {
      try {
        await this.connectSource();
      } catch (err) {
        this.log('warn', 'init.cancel_source_unreachable', { error: (err as Error).message });
      }
    }
    const result = await cleanupInit({
      target: this.target,
      source: this.source,
      name: this.name,
      tables: status.tables,
      emptyTables: status.method_state?.copy_data !== false,
      subscriptionOid: status.method_state?.subscription_oid ?? undefined,
    });
    await this.target.query('SELECT steep_repl.finish_init($1, $2, $3)', [
      this.nodeId,
      'cancelled',
      { removed: result.removed, left_on_source: result.leftOnSource },
    ]);
  }

  private async status(): Promise<InitStatus> {
    return (await this.target.query('SELECT steep_repl.init_status($1) AS s', [this.nodeId])).rows[0].s;
  }

  private async cancelRequested(): Promise<boolean> {
    const { rows } = await this.target
      .query('SELECT cancel_requested_at IS NOT NULL AS requested FROM steep_repl.init_progress WHERE node_id = $1', [this.nodeId])
      .catch(() => ({ rows: [] as Array<{ requested: boolean }> }));
    return rows[0]?.requested ?? false;
  }

  private checkpoint(): void {
    if (this.ctx.cancel.aborted) throw new Interrupted('cancelled');
    if (this.ctx.shutdown.aborted) throw new Interrupted('agent stopping');
    const timeout = this.options.timeout;
    if (timeout && Date.now() - this.startedAt > timeout * 1000) throw new InitTimeout(timeout);
  }

  private async report(tables: Array<TableReport | (SourceTable & { state: string; rows_copied: number })>, stats: object) {
    const { rows } = await this.target.query('SELECT * FROM steep_repl.report_init_progress($1, $2, $3)', [
      this.nodeId,
      JSON.stringify(tables),
      stats,
    ]);
    return rows[0];
  }

  // Facts a resumed or cancelling run needs, kept with the init's options.
  private async recordOptions(facts: Record<string, unknown>): Promise<void> {
    await this.target.query('SELECT steep_repl.record_method_state($1, $2)', [this.nodeId, facts]);
  }

  private async transition(to: string, reason: string): Promise<void> {
    await this.target.query('SELECT steep_repl.transition($1, $2, $3)', [this.nodeId, to, { reason }]);
  }

  private async phase(phase: string): Promise<void> {
    await this.target.query('SELECT steep_repl.init_phase($1, $2)', [this.nodeId, phase]);
  }

  private async connectSource(): Promise<Client> {
    const client = await connectToNode(this.sourceNode!, 'steep-repl init');
    client.on('error', (err) => this.log('warn', 'init.source_connection_error', { error: err.message }));
    this.source = client;
    return client;
  }

  // Runs fn on the source, reconnecting while the source is away; after the
  // grace period the init fails with SourceUnreachable.
  private async withSource<T>(fn: (source: Client) => Promise<T>): Promise<T> {
    const deadline = Date.now() + sourceGraceMs;
    let warned = false;
    for (;;) {
      try {
        return await fn(this.source ?? (await this.connectSource()));
      } catch (err) {
        if (!isConnectionError(err)) throw err;
        await this.source?.end().catch(() => undefined);
        this.source = undefined;
        const where = `${this.sourceNode!.node_id} (${this.sourceNode!.host}:${this.sourceNode!.port}/${this.sourceNode!.dbname})`;
        if (Date.now() > deadline) throw new SourceUnreachable(where, err as Error);
        if (!warned) this.log('warn', 'init.source_unreachable', { source: where, error: (err as Error).message, retry_for_ms: sourceGraceMs });
        warned = true;
        await pause(1000, this.signals);
        this.checkpoint();
      }
    }
  }

  private log(level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown> = {}): void {
    this.ctx.logger.log(level, event, { node_id: this.nodeId, job_id: this.ctx.jobId, ...fields });
  }
}

function describeTables(tables: Array<{ schema_name: string; table_name: string }>): string {
  const names = tables.map(tableLabel);
  return names.length > 20 ? `${names.slice(0, 20).join(', ')} and ${names.length - 20} more` : names.join(', ');
}
