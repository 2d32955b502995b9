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
