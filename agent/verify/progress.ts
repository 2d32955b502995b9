// A verify's progress in verify_runs / verify_tables, reported when a step
// changes and at least every second while a step runs (the row's trigger
// announces it on steep_repl_progress). Percent: the tables done, weighted
// by their row estimates, plus the share of the table under way: its pass 1
// is one statement, so while it runs the share grows with the time it is
// expected to take at the hash rate seen so far.
import { Queryable, TableName } from '../../lib/sql/queryable';
import { reportVerifyProgress, VerifyRunReport, VerifyTableReport } from '../../lib/sql/reportVerifyProgress';
import { Logger } from '../../lib/log';

const tickMs = 1000;
// rows a second one side hashes in pass 1, until a table has been measured
const assumedRate = 1_000_000;

type Phase = NonNullable<VerifyRunReport['phase']>;

// The table under way.
interface Current {
  weight: number;
  phase: Phase;
  // share of the table done when this step began, 0..1
  share: number;
  hashingSince?: number;
  expectedRows: number;
}

export class VerifyProgress {
  private readonly weights = new Map<string, number>();
  private totalWeight = 0;
  private doneWeight = 0;
  private tablesDone = 0;
  private rowsCompared = 0;
  private hashedRows = 0;
  private hashedMs = 0;
  private current?: Current;
  private timer?: NodeJS.Timeout;
  private phase: Phase = 'planning';
  private sending: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Queryable,
    private readonly verifyId: number,
    private readonly logger: Logger,
    // called when a report finds a cancel asked from SQL
    private readonly onCancelRequested: () => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.send(), tickMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  // Weights from the row estimates (an unanalyzed or empty table counts as one row).
  plan(tables: Array<TableName & { rowsEstimate: number | null }>): void {
    for (const t of tables) {
      const w = Math.max(1, t.rowsEstimate ?? 1);
      this.weights.set(key(t), w);
      this.totalWeight += w;
    }
  }

  get percent(): number {
    if (!this.totalWeight) return 0;
    const c = this.current;
    let share = 0;
    if (c) {
      share = c.share;
      if (c.phase === 'hashing' && c.hashingSince !== undefined) {
        const rate = this.hashedMs > 0 ? (this.hashedRows / this.hashedMs) * 1000 : assumedRate;
        const expectedMs = (c.expectedRows / rate) * 1000;
        share = 0.85 * Math.min(0.95, (Date.now() - c.hashingSince) / Math.max(expectedMs, 1));
      }
    }
    return Math.min(99.99, (100 * (this.doneWeight + (c ? c.weight * share : 0))) / this.totalWeight);
  }

  async step(table: TableName, phase: Phase, report: Omit<VerifyTableReport, 'schema_name' | 'table_name'>, share: number, expectedRows = 0): Promise<void> {
    const weight = this.weights.get(key(table)) ?? 1;
    const now = Date.now();
    if (this.current?.phase === 'hashing' && this.current.hashingSince !== undefined && phase !== 'hashing') {
      this.hashedRows += this.current.expectedRows;
      this.hashedMs += now - this.current.hashingSince;
    }
    this.current = {
      weight,
      phase,
      share,
      hashingSince: phase === 'hashing' ? now : undefined,
      expectedRows,
    };
    this.phase = phase;
    await this.send({ ...table, status: phase === 'planning' ? undefined : phase, ...report } as VerifyTableReport);
  }

  async tableDone(table: TableName, rowsCompared: number): Promise<void> {
    this.doneWeight += this.weights.get(key(table)) ?? 1;
    this.tablesDone += 1;
    this.rowsCompared += rowsCompared;
    this.current = undefined;
    await this.send();
  }

  async runReport(extra: VerifyRunReport): Promise<void> {
    await this.send(undefined, extra);
  }

  // One report at a time, in order; a failed one is logged, the next tick tries again.
  private send(table?: VerifyTableReport, extra: VerifyRunReport = {}): Promise<void> {
    this.sending = this.sending.then(async () => {
      try {
        const result = await reportVerifyProgress(
          this.db,
          this.verifyId,
          { phase: this.phase, percent: Math.round(this.percent * 100) / 100, tables_done: this.tablesDone, rows_compared: this.rowsCompared, ...extra },
          table ? [table] : [],
        );
        if (result.cancel_requested_at) this.onCancelRequested();
      } catch (err) {
        this.logger.log('warn', 'verify.progress_not_recorded', { verify_id: this.verifyId, error: (err as Error).message });
      }
    });
    return this.sending;
  }
}

const key = (t: TableName) => JSON.stringify([t.schema_name, t.table_name]);
