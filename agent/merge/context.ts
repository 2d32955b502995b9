// What the steps of one run of a merge job share: the run as claimed, the
// sessions (control on A, the peer B, readers and writers while they
// live), the pair's names, progress, what has happened on the nodes (in
// the merge, exchanged) and how it stops: a cancel (the job's, the run's
// or either node's) or the agent shutting down.
import { Client } from 'pg';
import { quoteIdent } from '../../lib/identifiers';
import type { ClaimedMerge } from '../../lib/sql/claimMerge';
import { RegisteredNode } from '../../lib/sql/getNode';
import { TaskContext } from '../task';
import { ApplyWatch } from './apply-errors';
import { MergeCancelled } from './errors';
import { closeWriter, Writers } from './exchange';
import { PairNames } from './names';
import { pauseAt, PausePoint } from './pause';
import { MergeProgress } from './progress';
import { closeSession, NodeEndpoint, PeerSession } from './sessions';
import { Readers } from './snapshots';

export type Log = (level: 'info' | 'warn' | 'error', event: string, fields?: Record<string, unknown>) => void;

export class MergeContext {
  readonly stop = new AbortController();
  cancelledBy?: string;
  readonly peer: PeerSession;
  readonly progress: MergeProgress;
  readonly endpoints: { a: NodeEndpoint; b: NodeEndpoint };
  readers?: Readers;
  writers?: Partial<Writers>;
  // merge_node_begin done on that node (the node is in this merge)
  readonly began = { a: false, b: false };
  // a node committed its share of the exchange (the point of no return)
  exchanged = false;
  // the subscriptions' apply failures, once they exist
  applyWatch?: ApplyWatch;

  constructor(
    readonly run: ClaimedMerge,
    readonly control: Client,
    readonly ctx: TaskContext,
    readonly nodes: { a: RegisteredNode; b: RegisteredNode },
    readonly names: PairNames,
    readonly log: Log,
  ) {
    for (const signal of [ctx.cancel, ctx.shutdown]) {
      if (signal.aborted) this.abort(signal === ctx.cancel ? 'job cancel' : undefined, signal.reason);
      else signal.addEventListener('abort', () => this.abort(signal === ctx.cancel ? 'job cancel' : undefined, signal.reason), { once: true });
    }
    this.peer = new PeerSession(nodes.b, this.stop.signal, log);
    this.endpoints = {
      a: { node: nodes.a, connectionString: ctx.connectionString, own: true },
      b: { node: nodes.b, own: false },
    };
    this.progress = new MergeProgress(control, this.peer, run, ctx.logger, (by) => this.abort(by));
  }

  get signal(): AbortSignal {
    return this.stop.signal;
  }

  get id(): number {
    return this.run.merge_id;
  }

  // node ids as messages quote them
  get a(): string {
    return quoteIdent(this.run.node_a);
  }

  get b(): string {
    return quoteIdent(this.run.node_b);
  }

  // by: what asked for a cancel; none: the agent is stopping
  private abort(by: string | undefined, reason?: unknown): void {
    if (by) this.cancelledBy ??= by;
    if (!this.stop.signal.aborted) this.stop.abort(by ? new MergeCancelled(by) : reason ?? new Error('agent stopping'));
  }

  checkpoint(): void {
    this.stop.signal.throwIfAborted();
  }

  async pauseAt(point: PausePoint): Promise<void> {
    await pauseAt(point, this.signal, (ms) => this.log('info', 'merge.paused', { before: point, ms, reason: 'STEEP_REPL_MERGE_PAUSE_AT' }));
    this.checkpoint();
  }

  get lastAttempt(): boolean {
    const job = this.ctx.helpers?.job;
    return !!job && job.attempts >= job.max_attempts;
  }

  // The run's timeout (seconds) counted from when its job first started.
  get deadline(): number {
    const started = this.run.started_at ? new Date(this.run.started_at).getTime() : Date.now();
    return started + Number(this.run.options.timeout ?? 3600) * 1000;
  }

  async closeReaders(): Promise<void> {
    const readers = this.readers;
    this.readers = undefined;
    if (readers) await Promise.all([closeSession(readers.a), closeSession(readers.b)]);
  }

  async closeWriters(): Promise<void> {
    const writers = this.writers;
    this.writers = undefined;
    if (writers) await Promise.all([closeWriter(writers.a), closeWriter(writers.b)]);
  }
}
