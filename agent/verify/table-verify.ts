// One table of a verify: compared at this moment (compare.ts), then what
// differed rechecked against the replication lag (recheck.ts), into the
// counts and keys verify_tables and verify_differences hold.
import { RecordedDifference, VerifyTableResult } from '../../lib/sql/recordVerifyTable';
import { AppliedTarget, peerPosition, waitApplied } from './applied';
import { compareByKey, CompareProgress, compareWhole, DifferenceKind } from './compare';
import { sampleBounds } from './ranges';
import { batched, ReadValues, recheck } from './recheck';
import { TableSql } from './table-sql';
import { TableShape } from './table-shape';

export interface TableVerifyOptions {
  keyLimit: number;
  signal: AbortSignal;
  // the table's steps, for progress
  onStep(phase: 'hashing' | 'drilling' | 'rechecking', progress: Partial<CompareProgress>, share: number): Promise<void> | void;
  // the peer's position after the first pass (verify_runs.peer_lsn)
  onPeerPosition(lsn: string): Promise<void> | void;
  note?: string;
  // resolves once the node applied past the peer's current position; a
  // merge's pair replicates both ways and passes one that waits for both
  settle?(): Promise<void>;
}

export interface TableVerdict {
  result: VerifyTableResult;
  // persistent ones first, then unsettled; at most keyLimit
  differences: RecordedDifference[];
  rechecks: number;
}

// keys a round reads per statement
const keysPerRead = 1000;
const hashesPerRead = 50000;

export async function verifyTable(target: AppliedTarget, sql: TableSql, shape: TableShape, options: TableVerifyOptions): Promise<TableVerdict> {
  const { peer, node } = target;
  // candidates rechecked (beyond: counted without a recheck, said so in the note)
  const keep = Math.max(options.keyLimit, 100000);
  const notes = options.note ? [options.note] : [];
  const settle = options.settle ?? (async () => waitApplied(target, await peerPosition(target), options.signal));
  const onProgress = (p: CompareProgress) =>
    options.onStep(p.phase, p, p.phase === 'hashing' ? 0 : 0.85 + (0.1 * p.rangesDone) / Math.max(1, p.rangesTotal));
  const count = { missing: 0, extra: 0, different: 0, unsettled: 0 };
  const differences: RecordedDifference[] = [];
  const keepDifference = (key: unknown, kind: RecordedDifference['kind']) => {
    if (differences.length < options.keyLimit) differences.push({ key, kind });
  };
  let progress: CompareProgress;
  let rechecks = 0;

  if (shape.key.length) {
    const bounds = await sampleBounds(peer, sql, shape, options.signal);
    await options.onStep('hashing', { rangesTotal: bounds.length + 1 }, 0);
    const found = await compareByKey(peer, node, sql, bounds, { keep, signal: options.signal, onProgress });
    progress = found.progress;
    await options.onPeerPosition(await peerPosition(target));
    const read: ReadValues = batched(async (side, keys) => {
      const { rows } = await side.client.query(sql.rowsByKeys(keys));
      return new Map(rows.map((r) => [r.k as string, r.h as string]));
    }, keysPerRead);
    if (found.kinds.size) await options.onStep('rechecking', progress, 0.95);
    const settled = await recheck(peer, node, [...found.kinds.keys()], read, { settle, signal: options.signal });
    rechecks = settled.rounds;
    const kinds: Array<[string, DifferenceKind]> = [...settled.persistent].map(([key, v]) => [
      key,
      v.peer === undefined ? 'extra' : v.node === undefined ? 'missing' : 'different',
    ]);
    for (const [key, kind] of kinds) {
      count[kind] += 1;
      keepDifference(JSON.parse(key), kind);
    }
    for (const key of settled.unsettled) {
      count.unsettled += 1;
      keepDifference(JSON.parse(key), 'unsettled');
    }
    for (const kind of ['missing', 'extra', 'different'] as const) count[kind] += found.overflow[kind];
    const unchecked = found.overflow.missing + found.overflow.extra + found.overflow.different;
    if (unchecked) notes.push(`${unchecked} differing rows beyond the first ${keep} were counted without a recheck`);
  } else {
    notes.push('no primary key: compared whole');
    await options.onStep('hashing', {}, 0);
    const found = await compareWhole(peer, node, sql, shape.rowsEstimate, { keep, signal: options.signal, onProgress });
    progress = found.progress;
    await options.onPeerPosition(await peerPosition(target));
    const read: ReadValues = batched(async (side, hashes) => {
      const { rows } = await side.client.query(sql.hashCounts(hashes));
      return new Map(rows.map((r) => [r.h as string, String(r.n)]));
    }, hashesPerRead);
    if (found.groups.size) await options.onStep('rechecking', progress, 0.95);
    const settled = await recheck(peer, node, [...found.groups.keys()], read, { settle, signal: options.signal });
    rechecks = settled.rounds;
    for (const [hash, v] of settled.persistent) {
      const onPeer = Number(v.peer ?? 0);
      const onNode = Number(v.node ?? 0);
      const kind = onPeer > onNode ? 'missing' : 'extra';
      count[kind] += Math.abs(onPeer - onNode);
      keepDifference(JSON.parse(found.groups.get(hash)!.row), kind);
    }
    for (const hash of settled.unsettled) {
      const g = found.groups.get(hash)!;
      count.unsettled += Math.max(1, Math.abs(g.reference - g.other));
      keepDifference(JSON.parse(g.row), 'unsettled');
    }
    count.missing += found.overflow.missing;
    count.extra += found.overflow.extra;
    if (found.overflow.missing + found.overflow.extra) notes.push(`differing rows beyond the first ${keep} distinct ones were counted without a recheck`);
  }

  const differs = count.missing + count.extra + count.different > 0;
  return {
    result: {
      status: differs ? 'differs' : count.unsettled ? 'unsettled' : 'equal',
      compared: shape.key.length ? 'key_ranges' : 'whole_table',
      note: notes.length ? notes.join('; ') : null,
      rows_estimate: shape.rowsEstimate === null ? null : Math.round(shape.rowsEstimate),
      ranges_total: progress.rangesTotal,
      ranges_done: progress.rangesDone,
      ranges_differing: progress.rangesDiffering,
      rows_compared: progress.rowsCompared,
      rows_missing: count.missing,
      rows_extra: count.extra,
      rows_different: count.different,
      rows_unsettled: count.unsettled,
    },
    differences,
    rechecks,
  };
}
