// Plain-text rendering for people; --json output bypasses it.

// Columns line up by terminal cells: ノード takes six, not three. terminal-kit
// loads on the first table, so commands that draw none (node start, cancel,
// status) do not pay its ~30 ms at start-up.
export function table(headers: string[], rows: Array<Array<string | number | null | undefined>>): string {
  const { stringWidth } = require('terminal-kit') as typeof import('terminal-kit');
  const cells = rows.map((row) => row.map((cell) => (cell === null || cell === undefined ? '' : String(cell))));
  const widths = headers.map((h, i) => Math.max(stringWidth(h), ...cells.map((row) => stringWidth(row[i]))));
  const line = (row: string[]) =>
    row
      .map((cell, i) => cell + ' '.repeat(widths[i] - stringWidth(cell)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n';
}

export function ago(at: Date | string | null | undefined, now = new Date()): string {
  if (!at) return 'never';
  const seconds = Math.max(0, Math.round((now.getTime() - new Date(at).getTime()) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '-';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
