// Cutting the planned tables into parts (SPEC 4.3, LESSONS): a relation
// whose heap plus TOAST exceeds the threshold is split into
// ceil(size / threshold) parts, at most maxParts, by ranges of its integer
// primary key where it has one (at the key's quantiles, else uniform over
// min..max read on the snapshot; the first and last part open-ended), else
// by ranges of heap blocks (ctid). A partitioned table is cut by leaf partition.
import { Client } from 'pg';
import { tableLabel } from '../../lib/identifiers';
import { Part, Split } from '../../lib/sql/initParts';
import { TableName } from '../../lib/sql/queryable';
import { ident, literal } from '../replication/quoting';

interface Leaf extends TableName {
  leaf_schema: string;
  leaf_name: string;
  bytes: number;
  blocks: number;
  rows_estimate: number;
  key_column: string | null;
}

export interface SplitRule {
  threshold: number;
  maxParts: number;
}

// The source session has imported the snapshot: min and max are the snapshot's.
export async function planParts(source: Client, tables: TableName[], rule: SplitRule): Promise<Part[]> {
  const { rows } = await source.query(
    `SELECT schema_name, table_name, leaf_schema, leaf_name, bytes::float8 AS bytes, blocks::float8 AS blocks,
            rows_estimate::float8 AS rows_estimate, key_column
     FROM steep_repl.copy_leaves($1)`,
    [JSON.stringify(tables.map(({ schema_name, table_name }) => ({ schema_name, table_name })))],
  );
  const parts: Part[] = [];
  for (const leaf of rows as Leaf[]) parts.push(...(await cutLeaf(source, leaf, rule)));
  return parts;
}

async function cutLeaf(source: Client, leaf: Leaf, rule: SplitRule): Promise<Part[]> {
  const wanted = leaf.bytes > rule.threshold ? Math.min(rule.maxParts, Math.ceil(leaf.bytes / rule.threshold)) : 1;
  const base = {
    schema_name: leaf.schema_name,
    table_name: leaf.table_name,
    leaf_schema: leaf.leaf_schema,
    leaf_name: leaf.leaf_name,
    key_column: null as string | null,
  };
  const whole = (): Part[] => [
    { ...base, part_no: 1, part_count: 1, split: 'whole', range_start: null, range_end: null, bytes_estimate: leaf.bytes, rows_estimate: leaf.rows_estimate },
  ];
  if (wanted <= 1) return whole();

  let bounds: bigint[];
  let split: Split;
  if (leaf.key_column) {
    const { rows } = await source.query(
      `SELECT min(${ident(leaf.key_column)})::text AS lo, max(${ident(leaf.key_column)})::text AS hi FROM ONLY ${ident(leaf.leaf_schema)}.${ident(leaf.leaf_name)}`,
    );
    if (rows[0].lo === null) return whole();
    const [lo, hi] = [BigInt(rows[0].lo), BigInt(rows[0].hi) + 1n];
    bounds = (await histogramCuts(source, leaf, lo, hi, wanted)) ?? cuts(lo, hi, wanted);
    split = 'key';
  } else {
    if (leaf.blocks < 2) return whole();
    bounds = cuts(0n, BigInt(leaf.blocks), wanted);
    split = 'ctid';
  }
  const count = bounds.length + 1;
  return Array.from({ length: count }, (_, i) => ({
    ...base,
    key_column: split === 'key' ? leaf.key_column : null,
    part_no: i + 1,
    part_count: count,
    split,
    range_start: i === 0 ? null : String(bounds[i - 1]),
    range_end: i === count - 1 ? null : String(bounds[i]),
    bytes_estimate: Math.round(leaf.bytes / count),
    rows_estimate: Math.round(leaf.rows_estimate / count),
  }));
}

// Cuts at the key's quantiles from the leaf's statistics (pg_stats), so
// parts hold about as many rows each even where keys are unevenly spread
// (a few far-off ids would leave uniform ranges empty). Statistics only
// shape the parts, never what is copied. None without a histogram.
async function histogramCuts(source: Client, leaf: Leaf, from: bigint, to: bigint, n: number): Promise<bigint[] | undefined> {
  const { rows } = await source.query(
    'SELECT histogram_bounds::text::numeric[]::text[] AS bounds FROM pg_stats WHERE schemaname = $1 AND tablename = $2 AND attname = $3 AND NOT inherited',
    [leaf.leaf_schema, leaf.leaf_name, leaf.key_column],
  );
  const histogram: bigint[] = (rows[0]?.bounds ?? []).map((b: string) => BigInt(b));
  if (histogram.length < n + 1) return undefined;
  const picked = Array.from({ length: n - 1 }, (_, i) => histogram[Math.round(((i + 1) * (histogram.length - 1)) / n)]);
  const bounds = [...new Set(picked)].filter((b) => b > from && b < to).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return bounds.length ? bounds : undefined;
}

// The n - 1 inner boundaries that cut [from, to) into n ranges of equal width
// (fewer when the range is narrower than n).
function cuts(from: bigint, to: bigint, n: number): bigint[] {
  const width = to - from;
  const parts = width < BigInt(n) ? Number(width) : n;
  const step = (width + BigInt(parts) - 1n) / BigInt(parts);
  const bounds: bigint[] = [];
  for (let i = 1; i < parts; i++) bounds.push(from + step * BigInt(i));
  return bounds.filter((b) => b < to);
}

// The part's rows as a WHERE condition on its leaf, or null for all of them.
export function rangeCondition(part: Part): string | null {
  const conditions: string[] = [];
  if (part.split === 'key') {
    const key = ident(part.key_column!);
    if (part.range_start !== null) conditions.push(`${key} >= ${BigInt(part.range_start)}`);
    if (part.range_end !== null) conditions.push(`${key} < ${BigInt(part.range_end)}`);
  } else if (part.split === 'ctid') {
    if (part.range_start !== null) conditions.push(`ctid >= ${literal(`(${BigInt(part.range_start)},0)`)}::tid`);
    if (part.range_end !== null) conditions.push(`ctid < ${literal(`(${BigInt(part.range_end)},0)`)}::tid`);
  }
  return conditions.length ? conditions.join(' AND ') : null;
}

export function partLabel(part: Part): string {
  const leaf = tableLabel({ schema_name: part.leaf_schema, table_name: part.leaf_name });
  return `${leaf}${part.part_count > 1 ? ` part ${part.part_no}/${part.part_count}` : ''}`;
}
