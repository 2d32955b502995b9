// Compares one table between two sessions at this moment, no replication
// involved: which keys differ and how (a verify then rechecks them against
// the replication lag, recheck.ts; a merge can act on them directly).
// Pass 1 is one scan per side, both at once: count and sum of row hashes
// per key range. A range that differs is cut at the quantiles of its keys
// and cut again until a piece holds at most rowsPerRange rows a side, whose
// (key, row hash) pairs are then compared here: memory stays within one
// piece. A table without a key is compared as a multiset of row hashes.
import { VerifyError } from './errors';
import { Side } from './session';
import { hashBounds, rangeCount, rowsPerRange } from './ranges';
import { KeyRange, TableSql } from './table-sql';

// missing: on the reference only; extra: on the other side only;
// different: on both, with other values.
export type DifferenceKind = 'missing' | 'extra' | 'different';

export interface CompareProgress {
  phase: 'hashing' | 'drilling';
  rangesTotal: number;
  rangesDone: number;
  rangesDiffering: number;
  rowsCompared: number;
}

export interface CompareOptions {
  perRange?: number;
  // differences kept (beyond: counted in overflow only)
  keep?: number;
  signal?: AbortSignal;
  onProgress?(progress: CompareProgress): void;
}

export interface KeyDifferences {
  // canonical key JSON → kind
  kinds: Map<string, DifferenceKind>;
  overflow: Record<DifferenceKind, number>;
  progress: CompareProgress;
  // rows each side held in pass 1 (exact when both read one snapshot: a
  // merge's identical rows are the reference's less what differs)
  totals: { reference: number; other: number };
}

// Rows of a table without a key that differ, by row hash: how many copies
// each side holds, and one of them as JSON.
export interface RowGroup {
  row: string;
  reference: number;
  other: number;
}

export interface WholeDifferences {
  groups: Map<string, RowGroup>;
  overflow: { missing: number; extra: number };
  progress: CompareProgress;
}

interface Aggregate {
  n: number;
  s: string;
}

const none: Aggregate = { n: 0, s: '0' };
const same = (a: Aggregate, b: Aggregate) => a.n === b.n && (a.n === 0 || a.s === b.s);
// at most this many pieces a differing range is cut into at a time
const maxPieces = 64;
const maxDepth = 48;

async function bucketAggregates(side: Side, query: { text: string; values: unknown[] }): Promise<Map<number, Aggregate>> {
  const { rows } = await side.client.query(query);
  return new Map(rows.map((r) => [Number(r.b), { n: Number(r.n), s: r.s ?? '0' }]));
}

async function aggregate(side: Side, sql: TableSql, range: KeyRange): Promise<Aggregate> {
  const { rows } = await side.client.query(sql.aggregate(range));
  return { n: Number(rows[0].n), s: rows[0].s };
}

async function rowHashes(side: Side, sql: TableSql, range: KeyRange): Promise<Map<string, string>> {
  const { rows } = await side.client.query(sql.rows(range));
  return new Map(rows.map((r) => [r.k as string, r.h as string]));
}

// bucket i of width_bucket over these bounds as a key range
function bucketRange(bounds: string[], i: number): KeyRange {
  return { lo: i === 0 ? null : [bounds[i - 1]], hi: i === bounds.length ? null : [bounds[i]] };
}

export async function compareByKey(reference: Side, other: Side, sql: TableSql, bounds: string[], options: CompareOptions = {}): Promise<KeyDifferences> {
  const perRange = options.perRange ?? rowsPerRange();
  const keep = options.keep ?? Infinity;
  const kinds = new Map<string, DifferenceKind>();
  const overflow: Record<DifferenceKind, number> = { missing: 0, extra: 0, different: 0 };
  const progress: CompareProgress = { phase: 'hashing', rangesTotal: bounds.length + 1, rangesDone: 0, rangesDiffering: 0, rowsCompared: 0 };
  const check = () => options.signal?.throwIfAborted();
  const note = (key: string, kind: DifferenceKind) => {
    if (kinds.size < keep) kinds.set(key, kind);
    else overflow[kind] += 1;
  };

  const [ref, oth] = await Promise.all([reference, other].map((s) => bucketAggregates(s, sql.buckets(bounds))));
  const differing: Array<{ range: KeyRange; a: Aggregate; b: Aggregate }> = [];
  const totals = { reference: 0, other: 0 };
  for (let i = 0; i <= bounds.length; i++) {
    const a = ref.get(i) ?? none;
    const b = oth.get(i) ?? none;
    totals.reference += a.n;
    totals.other += b.n;
    progress.rowsCompared += Math.max(a.n, b.n);
    if (same(a, b)) progress.rangesDone += 1;
    else differing.push({ range: bucketRange(bounds, i), a, b });
  }
  progress.rangesDiffering = differing.length;
  progress.phase = 'drilling';
  options.onProgress?.({ ...progress });

  const drill = async (range: KeyRange, a: Aggregate, b: Aggregate, depth = 0): Promise<void> => {
    check();
    // pieces shrink at every level when both sides order the keys alike
    if (depth > maxDepth) {
      throw new VerifyError(
        `the key ranges of ${sql.shape.label} do not narrow down: ${reference.name} and ${other.name} seem to order its key differently`,
        'report it with the key\'s type and collation on both nodes',
      );
    }
    if (Math.max(a.n, b.n) <= perRange) return compareRows(range);
    // cut at the quantiles of the side with more rows in it
    const [splitter, n] = a.n >= b.n ? [reference, a.n] : [other, b.n];
    const pieces = Math.min(maxPieces, Math.max(2, Math.ceil(n / perRange)));
    const { rows } = await splitter.client.query(sql.quantiles(range, Math.ceil(n / pieces)));
    const cuts: string[][] = rows.map((r) => r.bound);
    // the rows changed since they were counted: compare what is there
    if (!cuts.length) return compareRows(range);
    const edges = [range.lo, ...cuts, range.hi];
    for (let i = 0; i + 1 < edges.length; i++) {
      const piece = { lo: edges[i], hi: edges[i + 1] };
      const [pa, pb] = await Promise.all([aggregate(reference, sql, piece), aggregate(other, sql, piece)]);
      if (!same(pa, pb)) await drill(piece, pa, pb, depth + 1);
    }
  };
  const compareRows = async (range: KeyRange): Promise<void> => {
    const [ra, rb] = await Promise.all([rowHashes(reference, sql, range), rowHashes(other, sql, range)]);
    for (const [key, hash] of ra) {
      const theirs = rb.get(key);
      if (theirs === undefined) note(key, 'missing');
      else if (theirs !== hash) note(key, 'different');
      rb.delete(key);
    }
    for (const key of rb.keys()) note(key, 'extra');
  };

  for (const d of differing) {
    await drill(d.range, d.a, d.b);
    progress.rangesDone += 1;
    options.onProgress?.({ ...progress });
  }
  return { kinds, overflow, progress, totals };
}

// rows of differing hash buckets fetched per scan, at most (by pass 1's counts)
const groupsPerScan = 100000;

export async function compareWhole(reference: Side, other: Side, sql: TableSql, rowsEstimate: number | null, options: CompareOptions = {}): Promise<WholeDifferences> {
  const perRange = options.perRange ?? rowsPerRange();
  const keep = options.keep ?? Infinity;
  const bounds = hashBounds(rangeCount(rowsEstimate, perRange));
  const progress: CompareProgress = { phase: 'hashing', rangesTotal: bounds.length + 1, rangesDone: 0, rangesDiffering: 0, rowsCompared: 0 };
  const groups = new Map<string, RowGroup>();
  const overflow = { missing: 0, extra: 0 };

  const [ref, oth] = await Promise.all([reference, other].map((s) => bucketAggregates(s, sql.hashBuckets(bounds))));
  const differing: Array<{ bucket: number; rows: number }> = [];
  for (let i = 0; i <= bounds.length; i++) {
    const a = ref.get(i) ?? none;
    const b = oth.get(i) ?? none;
    progress.rowsCompared += Math.max(a.n, b.n);
    if (same(a, b)) progress.rangesDone += 1;
    else differing.push({ bucket: i, rows: Math.max(a.n, b.n) });
  }
  progress.rangesDiffering = differing.length;
  progress.phase = 'drilling';
  options.onProgress?.({ ...progress });

  while (differing.length) {
    options.signal?.throwIfAborted();
    const batch: number[] = [];
    for (let rows = 0; differing.length && (batch.length === 0 || rows + differing[0].rows <= groupsPerScan); ) {
      const next = differing.shift()!;
      batch.push(next.bucket);
      rows += next.rows;
    }
    const [ga, gb] = await Promise.all(
      [reference, other].map(async (s) => {
        const { rows } = await s.client.query(sql.hashGroups(bounds, batch));
        return new Map(rows.map((r) => [r.h as string, { n: Number(r.n), row: r.row as string }]));
      }),
    );
    for (const hash of new Set([...ga.keys(), ...gb.keys()])) {
      const a = ga.get(hash);
      const b = gb.get(hash);
      if (a?.n === b?.n) continue;
      const group = { row: (a ?? b)!.row, reference: a?.n ?? 0, other: b?.n ?? 0 };
      if (groups.size < keep) groups.set(hash, group);
      else if (group.reference > group.other) overflow.missing += group.reference - group.other;
      else overflow.extra += group.other - group.reference;
    }
    progress.rangesDone += batch.length;
    options.onProgress?.({ ...progress });
  }
  return { groups, overflow, progress };
}
