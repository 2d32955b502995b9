// Plain-text tables for people; --json output bypasses them. Numbers and
// times are formatted by lib/format, as in the live view.

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
