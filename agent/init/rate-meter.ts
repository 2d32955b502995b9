import type { ProgressStats, ReportedProgress } from '../../lib/sql/reportInitProgress';

// Rates smoothed over the last polls (exponential moving average), so one
// slow poll does not make the ETA jump.
export class RateMeter {
  private last?: { at: number; rows: number; bytes: number };
  rowsPerSecond = 0;
  bytesPerSecond = 0;

  constructor(private readonly smoothing = 0.3) {}

  update(rows: number, bytes: number, at = Date.now()): void {
    if (this.last && at > this.last.at) {
      const seconds = (at - this.last.at) / 1000;
      const rowRate = Math.max(0, (rows - this.last.rows) / seconds);
      const byteRate = Math.max(0, (bytes - this.last.bytes) / seconds);
      const first = this.rowsPerSecond === 0 && this.bytesPerSecond === 0;
      this.rowsPerSecond = first ? rowRate : this.smoothing * rowRate + (1 - this.smoothing) * this.rowsPerSecond;
      this.bytesPerSecond = first ? byteRate : this.smoothing * byteRate + (1 - this.smoothing) * this.bytesPerSecond;
    }
    this.last = { at, rows, bytes };
  }

  eta(bytesRemaining: number): number | null {
    return this.bytesPerSecond > 0 ? Math.ceil(Math.max(0, bytesRemaining) / this.bytesPerSecond) : null;
  }
}

// When a copy by PostgreSQL's table sync reports its progress: at once when
// a table changes state, else every everyMs; each report carries the rates
// measured up to the one before it (the first none).
export class CopyReports {
  private readonly meter = new RateMeter();
  private reportedAt = 0;
  private reportedStates = '';
  stats: Pick<ProgressStats, 'rows_per_second' | 'bytes_per_second' | 'eta_seconds'> = {};

  constructor(private readonly everyMs: number) {}

  due(tables: ReadonlyArray<{ state: string }>): boolean {
    return tables.map((t) => t.state).join() !== this.reportedStates || Date.now() - this.reportedAt >= this.everyMs;
  }

  // After a report of tables: what it returned sets the rates of the next.
  reported(tables: ReadonlyArray<{ state: string }>, progress: ReportedProgress): void {
    this.reportedAt = Date.now();
    this.reportedStates = tables.map((t) => t.state).join();
    this.meter.update(Number(progress.rows_copied), Number(progress.bytes_copied));
    this.stats = {
      rows_per_second: Math.round(this.meter.rowsPerSecond),
      bytes_per_second: Math.round(this.meter.bytesPerSecond),
      eta_seconds: this.meter.eta(Number(progress.bytes_total ?? 0) - Number(progress.bytes_copied)),
    };
  }
}
