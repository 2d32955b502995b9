// Step 3: one table compared on the two readers (the merge point) with the
// verify's range hashes (compare.ts), A as the reference: missing there is
// only on A, extra only on B, different a conflict. Every differing key is
// kept (the exchange needs them all), up to STEEP_REPL_MERGE_MAX_DIFFERENCES
// over all kinds; beyond, the merge fails before it changes anything.
import { Client } from 'pg';
import { quoteIdent } from '../../lib/identifiers';
import type { MergeSampleKeys } from '../../lib/sql/mergeStatus';
import { compareByKey, CompareProgress } from '../verify/compare';
import { sampleBounds } from '../verify/ranges';
import { PlannedTable } from './checks';
import { MergeError } from './errors';

export const maxDifferences = (): number => {
  const n = Number(process.env.STEEP_REPL_MERGE_MAX_DIFFERENCES);
  return Number.isFinite(n) && n >= 1 ? Math.floor(n) : 10_000_000;
};

export interface TableDiff {
  rowsA: number;
  rowsB: number;
  identical: number;
  // canonical key JSON texts
  onlyA: string[];
  onlyB: string[];
  conflicts: string[];
}

const samplesPerKind = 10;

export async function compareTable(
  readers: { a: Client; b: Client },
  names: { a: string; b: string },
  p: PlannedTable,
  options: { signal: AbortSignal; onProgress(progress: CompareProgress): void },
): Promise<TableDiff> {
  const a = { client: readers.a, name: `node ${quoteIdent(names.a)}` };
  const b = { client: readers.b, name: `node ${quoteIdent(names.b)}` };
  const keep = maxDifferences();
  const bounds = await sampleBounds(a, p.sql, p.shape, options.signal);
  const found = await compareByKey(a, b, p.sql, bounds, { keep, signal: options.signal, onProgress: options.onProgress });
  const overflow = found.overflow.missing + found.overflow.extra + found.overflow.different;
  if (overflow) {
    throw new MergeError(
      `more than ${keep} rows of ${p.table.label} differ between the nodes (${found.kinds.size + overflow}): nothing was changed`,
      'refused',
      'a merge keeps every differing key in memory: raise STEEP_REPL_MERGE_MAX_DIFFERENCES for the agent, or merge fewer tables at a time (--tables)',
    );
  }
  const diff: TableDiff = { rowsA: found.totals.reference, rowsB: found.totals.other, identical: 0, onlyA: [], onlyB: [], conflicts: [] };
  for (const [key, kind] of found.kinds) {
    if (kind === 'missing') diff.onlyA.push(key);
    else if (kind === 'extra') diff.onlyB.push(key);
    else diff.conflicts.push(key);
  }
  diff.identical = diff.rowsA - diff.onlyA.length - diff.conflicts.length;
  return diff;
}

// The first keys of each kind, for merge_tables.sample_keys (display only).
export function sampleKeys(diff: TableDiff): MergeSampleKeys {
  const parse = (keys: string[]) => keys.slice(0, samplesPerKind).map((k) => JSON.parse(k) as Record<string, unknown>);
  return { only_a: parse(diff.onlyA), only_b: parse(diff.onlyB), conflicting: parse(diff.conflicts) };
}
