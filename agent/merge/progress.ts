// A merge's progress: the run's row on A (report_merge_progress; its
// trigger announces it on steep_repl_progress) and, once the nodes are in
// the merge, each node's init_progress (merge_node_step), when something
// changes and at least every second. Each tick also reads whether a cancel
// was asked: on the run, or on either node (node cancel on B's database).
// Percent: preparing 0-5, comparing 5-45, exchanging 45-75, catching_up
// 75-85, verifying 85-100; a read-only run compares from 5 to 100.
import { Client } from 'pg';
import { redactSecrets } from '../../lib/connection';
import { Logger } from '../../lib/log';
import type { MergeMode, MergePhase, MergeStep, MergeTotals } from '../../lib/sql/mergeStatus';
import { mergeNodeStep, MergeNodeProgress } from '../../lib/sql/mergeNodeStep';
import { reportMergeProgress, MergeRunReport } from '../../lib/sql/reportMergeProgress';
import { PeerSession } from './sessions';

const tickMs = 1000;

const spans: Record<MergePhase, [number, number]> = {
  preparing: [0, 5],
  comparing: [5, 45],
  exchanging: [45, 75],
  catching_up: [75, 85],
  verifying: [85, 100],
  done: [100, 100],
};

// init_progress.phase of each merge phase
const nodePhase: Record<MergePhase, MergeNodeProgress['phase']> = {
  preparing: 'preparing',
  comparing: 'copying',
  exchanging: 'copying',
  catching_up: 'catching_up',
  verifying: 'verifying',
  done: 'verifying',
};

export class MergeProgress {
  phase: MergePhase = 'preparing';
  // merge_runs.step, and init_progress.merge.step on the nodes
  step: MergeStep = 'queued';
  nodeStep: MergeStep = 'queued';
  // share of the phase done, 0..1
  fraction = 0;
  tablesDone = 0;
  currentTable: string | null = null;
  readonly totals: MergeTotals = { rows_identical: 0, rows_only_a: 0, rows_only_b: 0, rows_conflicting: 0, rows_to_a: 0, rows_to_b: 0 };
  // rows the exchange writes on each node, in all (init_progress.rows_total)
  rowsPlanned = { a: 0, b: 0 };
  // merge_node_step on both nodes (a merge, once they are in it)
  nodes = false;
  private held = false;
  private timer?: NodeJS.Timeout;
  private sending: Promise<void> = Promise.resolve();
  private ticking = false;

  constructor(
    private readonly control: Client,
    private readonly peer: PeerSession,
    private readonly run: { merge_id: number; node_a: string; node_b: string; mode: MergeMode; tables_total: number },
    private readonly logger: Logger,
    // a cancel asked from SQL: where it was seen
    private readonly onCancel: (by: string) => void,
  ) {}

  get percent(): number {
    const [lo, hi] = this.run.mode === 'merge' || this.phase !== 'comparing' ? spans[this.phase] : [5, 100];
    return Math.min(this.phase === 'done' ? 100 : 99.99, Math.round((lo + (hi - lo) * Math.min(1, Math.max(0, this.fraction))) * 100) / 100);
  }

  start(): void {
    this.timer = setInterval(() => {
      if (!this.ticking) void this.send();
    }, tickMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  // No more ticks, and the one under way done: before the run or a node ends.
  async halt(): Promise<void> {
    this.stop();
    await this.sending;
  }

  async enter(phase: MergePhase, steps: { run?: MergeStep; node?: MergeStep } = {}): Promise<void> {
    this.phase = phase;
    this.fraction = 0;
    this.currentTable = null;
    // tables done counts the tables of this phase
    this.tablesDone = 0;
    if (steps.run) this.step = steps.run;
    if (steps.node) this.nodeStep = steps.node;
    await this.send();
  }

  // No node ticks until release: the exchange's COMMITs write the step
  // 'exchanged' in their own transactions, which a tick must not overwrite.
  async hold(): Promise<void> {
    this.held = true;
    await this.sending;
  }

  release(): void {
    this.held = false;
  }

  // Now, in order after any report under way.
  send(extra: MergeRunReport = {}): Promise<void> {
    this.ticking = true;
    this.sending = this.sending.then(async () => {
      try {
        await this.report(extra);
      } catch (err) {
        this.logger.log('warn', 'merge.progress_not_recorded', { merge_id: this.run.merge_id, error: redactSecrets((err as Error).message) });
      } finally {
        this.ticking = false;
      }
    });
    return this.sending;
  }

  private async report(extra: MergeRunReport): Promise<void> {
    await reportMergeProgress(this.control, this.run.merge_id, {
      phase: this.phase,
      step: this.step,
      percent: this.percent,
      tables_done: this.tablesDone,
      ...this.totals,
      ...extra,
    });
    const { rows } = await this.control.query('SELECT cancel_requested_at FROM steep_repl.merge_runs WHERE merge_id = $1', [this.run.merge_id]);
    if (rows[0]?.cancel_requested_at) this.onCancel(`merge ${this.run.merge_id}`);
    if (!this.nodes || this.held) return;
    const onA = await mergeNodeStep(this.control, this.run.node_a, this.run.merge_id, this.nodeStep, null, this.nodeProgress('a'));
    if (onA.cancel_requested_at) this.onCancel(`node ${this.run.node_a}`);
    const onB = await this.peer.run((b) => mergeNodeStep(b, this.run.node_b, this.run.merge_id, this.nodeStep, null, this.nodeProgress('b')));
    if (onB.cancel_requested_at) this.onCancel(`node ${this.run.node_b}`);
  }

  nodeProgress(node: 'a' | 'b'): MergeNodeProgress {
    return {
      phase: nodePhase[this.phase],
      overall_percent: this.percent,
      tables_done: this.tablesDone,
      tables_total: this.run.tables_total,
      current_table: this.currentTable,
      rows_copied: node === 'a' ? this.totals.rows_to_a : this.totals.rows_to_b,
      rows_total: this.rowsPlanned[node] || null,
    };
  }
}
