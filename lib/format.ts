// Numbers and times for people, one text per value in the CLI and the live
// view. Sizes use pg_size_pretty's units (1 kB = 1024 bytes), so they match
// what psql shows. A value that is not known prints as '-'.
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

// "41%", "41.7%": cut, not rounded, so 99.96% never reads as done.
export function percent(value: Numeric, decimals = 0): string {
  const n = num(value);
  if (n === undefined) return '-';
  const scale = 10 ** decimals;
  return `${(Math.floor(n * scale + 1e-9) / scale).toFixed(decimals)}%`;
}

// "12.3k rows/s"
export function rowsPerSecond(value: Numeric): string {
  return num(value) === undefined ? '-' : `${count(value)} rows/s`;
}

// "48.1MB/s"
export function bytesPerSecond(value: Numeric): string {
  return num(value) === undefined ? '-' : `${bytes(value)}/s`;
}

// "42s", "1m02s", "3h05m"
export function duration(seconds: Numeric): string {
  const n = num(seconds);
  if (n === undefined) return '-';
  const s = Math.round(n);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

// "ETA 1m02s", or '' when there is no estimate.
export function eta(seconds: Numeric): string {
  return num(seconds) === undefined ? '' : `ETA ${duration(seconds)}`;
}

// "67% ETA 14m02s": an init in progress in one cell (node list, the live view's INIT column).
export function initPercentAndEta(overallPercent: Numeric, etaSeconds: Numeric): string {
  return [percent(num(overallPercent) ?? 0), eta(etaSeconds)].filter(Boolean).join(' ');
}

// "1 table differs", "3 tables differ": what a verify found that persists.
export const tablesDiffer = (n: number): string => `${n} table${n === 1 ? '' : 's'} differ${n === 1 ? 's' : ''}`;

// "12s ago", "3m ago", "never"
export function ago(at: Date | string | null | undefined, now = new Date()): string {
  if (!at) return 'never';
  const seconds = Math.max(0, Math.round((now.getTime() - new Date(at).getTime()) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

// A word a POSIX shell reads back unchanged, for commands we suggest to run.
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
