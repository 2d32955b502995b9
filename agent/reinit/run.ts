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
import { sourceGraceMs, withRetriedSource } from '../init/failure';
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

  withSource<T>(fn: (source: Client) => Promise<T>): Promise<T> {
    return withRetriedSource(
      {
        node: this.sourceNode,
        current: () => this.source,
        open: async () => {
          const client = await connectToNode(this.sourceNode, 'steep-repl reinit', this.ctx.shutdown);
          client.on('error', (err) => this.log('warn', 'reinit.source_connection_error', { error: err.message }));
          return (this.source = client);
        },
        drop: async () => {
          await this.source?.end().catch(() => undefined);
          this.source = undefined;
        },
        wait: async () => {
          await this.pause(1000);
          this.checkShutdown();
        },
        away: (where, err) => this.log('warn', 'reinit.source_unreachable', { source: where, error: redactSecrets(err.message), retry_for_ms: sourceGraceMs }),
        stopping: () => this.ctx.shutdown.aborted,
      },
      fn,
    );
  }

  async close(): Promise<void> {
    await this.source?.end().catch(() => undefined);
    await this.target.end().catch(() => undefined);
  }

  log(level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown> = {}): void {
    this.ctx.logger.log(level, event, { node_id: this.nodeId, job_id: this.ctx.jobId, ...fields });
  }
}
