// Numbers for people, the same in the CLI and the live view. Sizes use
// pg_size_pretty's units (1 kB = 1024 bytes), so they match what psql shows.
export type Numeric = number | string | null | undefined;

export function num(value: Numeric): number | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

const units = ['B', 'kB', 'MB', 'GB', 'TB'];

export function bytes(value: Numeric): string {
  let n = num(value);
  if (n === undefined) return '-';
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  return `${n >= 100 || unit === 0 ? Math.round(n) : n.toFixed(1)}${units[unit]}`;
}

export function count(value: Numeric): string {
  const n = num(value);
  if (n === undefined) return '-';
  if (n < 1000) return String(Math.round(n));
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 1 : 0)}k`;
  if (n < 1e9) return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)}M`;
  return `${(n / 1e9).toFixed(1)}G`;
}

// A word a POSIX shell reads back unchanged, for commands we suggest to run.
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
