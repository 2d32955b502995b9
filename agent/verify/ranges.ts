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
const pagesPerRange = 8;

export function rangeCount(rowsEstimate: number | null, perRange = rowsPerRange()): number {
  // never analyzed, or small: one range (a differing one is split by its rows)
  if (!rowsEstimate || rowsEstimate <= perRange) return 1;
  return Math.min(maxRanges, Math.ceil(rowsEstimate / perRange));
}

// Sorted distinct bounds, one fewer than the ranges they make; none for one
// range. SYSTEM samples whole pages, and a page holds neighbouring keys
// when the table is in key order: the sample takes pagesPerRange pages a
// range at least, so that quantiles do not fall in a few pages' clusters.
export async function sampleBounds(reference: Side, sql: TableSql, shape: { rowsEstimate: number | null; pages: number }, signal?: AbortSignal): Promise<string[]> {
  const ranges = rangeCount(shape.rowsEstimate);
  if (ranges === 1) return [];
  signal?.throwIfAborted();
  const fractions = Array.from({ length: ranges - 1 }, (_, i) => (i + 1) / ranges);
  let percent = Math.min(100, Math.max((100 * ranges * pagesPerRange) / Math.max(shape.pages, 1), (100 * ranges * samplesPerRange) / shape.rowsEstimate!));
  for (;;) {
    const { rows } = await reference.client.query(sql.sampleQuantiles(percent, fractions));
    // a small table may give too few: read more of it
    if (Number(rows[0].n) >= ranges * 2 || percent >= 100) {
      const bounds: string[] = [];
      for (const v of (rows[0].bounds ?? []) as string[]) if (v !== bounds[bounds.length - 1]) bounds.push(v);
      return bounds;
    }
    percent = Math.min(100, percent * 4);
  }
}

// Bounds that cut the signed 64-bit hash values into `ranges` equal parts.
export function hashBounds(ranges: number): string[] {
  const span = 1n << 64n;
  const bounds: string[] = [];
  for (let i = 1; i < ranges; i++) bounds.push((-(1n << 63n) + (span * BigInt(i)) / BigInt(ranges)).toString());
  return bounds;
}
