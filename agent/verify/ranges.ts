// Pass 1's ranges: bounds of the first key column from a TABLESAMPLE of
// the reference side, sized from the table's row estimate (no count(*)),
// about rowsPerRange rows a range; a table without a key is cut by its
// row hashes instead, whose values spread evenly over the 64-bit range.
import { Side } from './session';
import { TableSql } from './table-sql';

export const rowsPerRange = (): number => {
  const n = Number(process.env.STEEP_REPL_VERIFY_ROWS_PER_RANGE);
  return Number.isFinite(n) && n >= 10 ? Math.floor(n) : 10000;
};
export const maxRanges = 4096;
// sampled keys per range: enough that bounds fall near the quantiles
const samplesPerRange = 20;

export function rangeCount(rowsEstimate: number | null, perRange = rowsPerRange()): number {
  // never analyzed, or small: one range (a differing one is split by its rows)
  if (!rowsEstimate || rowsEstimate <= perRange) return 1;
  return Math.min(maxRanges, Math.ceil(rowsEstimate / perRange));
}

// Sorted distinct bounds, one fewer than the ranges they make; none for one range.
export async function sampleBounds(reference: Side, sql: TableSql, rowsEstimate: number | null, signal?: AbortSignal): Promise<string[]> {
  const ranges = rangeCount(rowsEstimate);
  if (ranges === 1) return [];
  signal?.throwIfAborted();
  // SYSTEM samples whole pages: a small table may give too few, then more is read
  let values: string[] = [];
  for (let percent = Math.min(100, (100 * ranges * samplesPerRange) / rowsEstimate!); ; percent = Math.min(100, percent * 4)) {
    values = (await reference.client.query(sql.sample(percent))).rows.map((r) => r.v);
    if (values.length >= ranges * 2 || percent >= 100) break;
  }
  const bounds: string[] = [];
  for (let i = 1; i < ranges; i++) {
    const v = values[Math.floor((i * values.length) / ranges)];
    if (v !== undefined && v !== bounds[bounds.length - 1]) bounds.push(v);
  }
  return bounds;
}

// Bounds that cut the signed 64-bit hash values into `ranges` equal parts.
export function hashBounds(ranges: number): string[] {
  const span = 1n << 64n;
  const bounds: string[] = [];
  for (let i = 1; i < ranges; i++) bounds.push((-(1n << 63n) + (span * BigInt(i)) / BigInt(ranges)).toString());
  return bounds;
}
