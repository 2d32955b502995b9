// One run of a reinit job (tables or schema): what its steps use — the
// node's database, its source (reconnected while it is briefly away), the
// reinit as recorded, its step, log lines.
import { Client } from 'pg';
import { connectToNode, redactSecrets } from '../../lib/connection';
import { tableLabel } from '../../lib/identifiers';
import { getInitStatus, InitStatus, MethodState } from '../../lib/sql/getInitStatus';
import { getNode, RegisteredNode } from '../../lib/sql/getNode';
import type { ReinitState } from '../../lib/sql/listNodes';
import { TableName } from '../../lib/sql/queryable';
import { recordReinitStep, ReinitStep } from '../../lib/sql/recordReinitStep';
import { isConnectionError, SourceUnreachable } from '../init/failure';
import { sourceGraceMs } from '../init/runner';
import { pause } from '../init/wait';
import { TaskContext } from '../task';

// The order of the steps: a run goes on from the one recorded.
const steps: ReinitStep[] = ['queued', 'removing', 'removed', 'emptied', 'added', 'copied', 'verifying'];

export class ReinitRun {
  status!: InitStatus;
  reinit!: ReinitState;
  state!: MethodState;
  sourceNode!: RegisteredNode;
  private source?: Client;

  constructor(
    readonly nodeId: string,
    readonly target: Client,
    readonly ctx: TaskContext,
  ) {}

  get tables(): TableName[] {
    return this.reinit.tables ?? [];
  }

  get labels(): string[] {
    return this.tables.map(tableLabel);
  }

  // The pair's publication, subscription and slot share the init's name.
  get name(): string {
    return this.state.replication_name;
  }

  async refresh(): Promise<InitStatus> {
    this.status = await getInitStatus(this.target, this.nodeId);
    this.reinit = (this.status.progress?.reinit ?? null) as ReinitState;
    if (this.status.method_state) this.state = this.status.method_state;
    return this.status;
  }

  async loadSource(): Promise<void> {
    this.sourceNode = await getNode(this.target, this.status.source_node_id!);
  }

  // Whether the recorded step is at or past this one.
  reached(step: ReinitStep): boolean {
    return steps.indexOf((this.reinit.step ?? 'queued') as ReinitStep) >= steps.indexOf(step);
  }

  async record(step: ReinitStep, facts: Record<string, unknown> = {}): Promise<ReinitState & { cancel_requested: boolean }> {
    const recorded = await recordReinitStep(this.target, this.nodeId, step, facts);
    const { cancel_requested: _, ...reinit } = recorded;
    this.reinit = reinit;
    return recorded;
  }

  async cancelRequested(): Promise<boolean> {
    return !!(await getInitStatus(this.target, this.nodeId)).progress?.cancel_requested_at;
  }

  // Between two steps: an agent that stops leaves the reinit where it is;
  // the job runs again when an agent starts.
  checkShutdown(): void {
    this.ctx.shutdown.throwIfAborted();
  }

  // Only the shutdown ends a pause: a cancel past the point of no return
  // does not stop the re-copy.
  pause(ms: number): Promise<void> {
    return pause(ms, [this.ctx.shutdown]);
  }

  async withSource<T>(fn: (source: Client) => Promise<T>): Promise<T> {
    const deadline = Date.now() + sourceGraceMs;
    let warned = false;
    for (;;) {
      try {
        if (!this.source) {
          const client = await connectToNode(this.sourceNode, 'steep-repl reinit', this.ctx.shutdown);
          client.on('error', (err) => this.log('warn', 'reinit.source_connection_error', { error: err.message }));
          this.source = client;
        }
        return await fn(this.source);
      } catch (err) {
        if (!isConnectionError(err) || this.ctx.shutdown.aborted) throw err;
        await this.source?.end().catch(() => undefined);
        this.source = undefined;
        const where = `${this.sourceNode.node_id} (${this.sourceNode.host}:${this.sourceNode.port}/${this.sourceNode.dbname})`;
        if (Date.now() > deadline) throw new SourceUnreachable(where, err as Error);
        if (!warned) this.log('warn', 'reinit.source_unreachable', { source: where, error: redactSecrets((err as Error).message), retry_for_ms: sourceGraceMs });
        warned = true;
        await this.pause(1000);
        this.checkShutdown();
      }
    }
  }

  async close(): Promise<void> {
    await this.source?.end().catch(() => undefined);
    await this.target.end().catch(() => undefined);
  }

  log(level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown> = {}): void {
    this.ctx.logger.log(level, event, { node_id: this.nodeId, job_id: this.ctx.jobId, ...fields });
  }
}
