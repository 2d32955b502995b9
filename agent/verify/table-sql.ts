// The SQL text a verify runs on both sides for one table, made from the
// reference side's shape (both sides were checked to have the same columns,
// types and key). Every identifier quoted; values travel as text parameters
// cast to the key's types, so a bound read on one server means the same
// value on the other (the sessions share their settings: session.ts).
import { literal, ident, qualified } from '../replication/quoting';
import { ShapeColumn, TableShape } from './table-shape';

// A key range, half-open: lo <= key < hi. A bound is the key's text values,
// the whole key or its first columns (a prefix compares as the row of
// those columns); null: no bound on that side.
export interface KeyRange {
  lo: string[] | null;
  hi: string[] | null;
}

export class TableSql {
  readonly key: ShapeColumn[];
  // ONLY for a plain table: a publication of a parent in an inheritance
  // tree carries the parent's rows alone; a partitioned table its partitions'
  private readonly from: string;

  constructor(
    readonly shape: TableShape,
    // key columns ordered by COLLATE "C" on both sides (their collations differ)
    private readonly collateC: ReadonlySet<string> = new Set(),
  ) {
    this.key = shape.key;
    this.from = `${shape.partitioned ? '' : 'ONLY '}${qualified(shape)} t`;
  }

  // One 64-bit hash of the whole row, typed: 3000.00 and 3000.0 are the
  // same numeric, a timestamptz is hashed on its instant. Text is hashed
  // as bytes (COLLATE "C") whatever its collation on either side.
  get rowHash(): string {
    const values = this.shape.columns.map((c) => {
      const col = `t.${ident(c.name)}`;
      if (c.hashAs !== 'value') return `${col}::${c.hashAs}`;
      return c.collation ? `${col} COLLATE "C"` : col;
    });
    return `hash_record_extended(ROW(${values.join(', ')}), 0)`;
  }

  // The key as one canonical JSON text, the same on both sides for equal
  // keys: numerics without trailing zeros.
  get keyJson(): string {
    const pairs = this.key.map((c) => `${literal(c.name)}, ${c.numeric ? `trim_scale(t.${ident(c.name)})` : `t.${ident(c.name)}`}`);
    return `jsonb_build_object(${pairs.join(', ')})::text`;
  }

  private keyColumn(i: number): string {
    const c = this.key[i];
    return `t.${ident(c.name)}${this.collateC.has(c.name) ? ' COLLATE "C"' : ''}`;
  }

  private get keyColumns(): string[] {
    return this.key.map((_, i) => this.keyColumn(i));
  }

  private bound(op: '>=' | '<', values: string[], params: unknown[]): string {
    const cols = values.map((_, i) => this.keyColumn(i));
    const vals = values.map((v, i) => {
      params.push(v);
      return `$${params.length}::text::${this.key[i].type}`;
    });
    return values.length === 1 ? `${cols[0]} ${op} ${vals[0]}` : `ROW(${cols.join(', ')}) ${op} ROW(${vals.join(', ')})`;
  }

  private where(range: KeyRange, params: unknown[]): string {
    const parts: string[] = [];
    if (range.lo) parts.push(this.bound('>=', range.lo, params));
    if (range.hi) parts.push(this.bound('<', range.hi, params));
    return parts.length ? `WHERE ${parts.join(' AND ')}` : '';
  }

  // Pass 1, one scan: count and sum of row hashes per bucket of the first
  // key column (width_bucket: bucket 0 below the first bound, the last one
  // from the last bound up). No bounds: the whole table as bucket 0.
  buckets(bounds: string[]): { text: string; values: unknown[] } {
    if (!bounds.length) {
      return { text: `SELECT 0 AS b, count(*)::int8 AS n, coalesce(sum(${this.rowHash}), 0)::text AS s FROM ${this.from}`, values: [] };
    }
    return {
      text: `SELECT width_bucket(${this.keyColumn(0)}, $1::text[]::${this.key[0].type}[]) AS b, count(*)::int8 AS n,
                    sum(${this.rowHash})::text AS s
             FROM ${this.from} GROUP BY 1`,
      values: [bounds],
    };
  }

  aggregate(range: KeyRange): { text: string; values: unknown[] } {
    const values: unknown[] = [];
    const where = this.where(range, values);
    return { text: `SELECT count(*)::int8 AS n, coalesce(sum(${this.rowHash}), 0)::text AS s FROM ${this.from} ${where}`, values };
  }

  // Every step-th key of the range in key order: bounds that split it into
  // pieces of about step rows.
  quantiles(range: KeyRange, step: number): { text: string; values: unknown[] } {
    const values: unknown[] = [];
    const where = this.where(range, values);
    values.push(step);
    const keys = this.key.map((c, i) => `t.${ident(c.name)} AS k${i}`);
    return {
      text: `SELECT ARRAY[${this.key.map((_, i) => `k${i}::text`).join(', ')}] AS bound
             FROM (SELECT ${keys.join(', ')}, row_number() OVER (ORDER BY ${this.keyColumns.join(', ')}) AS rn
                   FROM ${this.from} ${where}) q
             WHERE rn % $${values.length} = 0 ORDER BY rn`,
      values,
    };
  }

  rows(range: KeyRange): { text: string; values: unknown[] } {
    const values: unknown[] = [];
    const where = this.where(range, values);
    return { text: `SELECT ${this.keyJson} AS k, ${this.rowHash}::text AS h FROM ${this.from} ${where}`, values };
  }

  // t's key among the keys of parameter $n, a JSON array of key objects
  // (the canonical key JSON texts, joined).
  keyIn(n: number): string {
    const cols = this.key.map((c) => ident(c.name));
    const defs = this.key.map((c) => `${ident(c.name)} ${c.type}`);
    const lhs = cols.length === 1 ? `t.${cols[0]}` : `(${cols.map((c) => `t.${c}`).join(', ')})`;
    return `${lhs} IN (SELECT ${cols.map((c) => `x.${c}`).join(', ')} FROM jsonb_to_recordset($${n}::jsonb) AS x(${defs.join(', ')}))`;
  }

  // The rows of these keys (canonical key JSON texts), as rows() gives them.
  rowsByKeys(keys: string[]): { text: string; values: unknown[] } {
    return {
      text: `SELECT ${this.keyJson} AS k, ${this.rowHash}::text AS h FROM ${this.from} WHERE ${this.keyIn(1)}`,
      values: [`[${keys.join(',')}]`],
    };
  }

  // A table without a key, pass 1: buckets of the row hash itself (its
  // values spread evenly), so equal multisets of rows give equal buckets.
  hashBuckets(bounds: string[]): { text: string; values: unknown[] } {
    if (!bounds.length) return { text: `SELECT 0 AS b, count(*)::int8 AS n, coalesce(sum(${this.rowHash}), 0)::text AS s FROM ${this.from}`, values: [] };
    return {
      text: `SELECT width_bucket(h, $1::int8[]) AS b, count(*)::int8 AS n, sum(h)::text AS s
             FROM (SELECT ${this.rowHash} AS h FROM ${this.from}) q GROUP BY 1`,
      values: [bounds],
    };
  }

  // Rows of some hash buckets grouped by their hash: how many of each, and
  // one of them as JSON (what a difference reports for a table without a key).
  hashGroups(bounds: string[], buckets: number[]): { text: string; values: unknown[] } {
    const inBuckets = bounds.length ? 'WHERE width_bucket(h, $1::int8[]) = ANY ($2::int[])' : '';
    return {
      text: `SELECT h::text AS h, count(*)::int8 AS n, min(r) AS row
             FROM (SELECT ${this.rowHash} AS h, to_jsonb(t)::text AS r FROM ${this.from}) q ${inBuckets} GROUP BY h`,
      values: bounds.length ? [bounds, buckets] : [],
    };
  }

  hashCounts(hashes: string[]): { text: string; values: unknown[] } {
    return {
      text: `SELECT h::text AS h, count(*)::int8 AS n FROM (SELECT ${this.rowHash} AS h FROM ${this.from}) q
             WHERE h = ANY ($1::int8[]) GROUP BY h`,
      values: [hashes],
    };
  }

  // Pass 1's bounds from a sample of the first key column: its quantiles at
  // these fractions, computed by the server (the sample stays there), and
  // how many rows the sample had.
  sampleQuantiles(percent: number, fractions: number[]): { text: string; values: unknown[] } {
    return {
      text: `SELECT count(*)::int8 AS n, percentile_disc($2::float8[]) WITHIN GROUP (ORDER BY ${this.keyColumn(0)})::text[] AS bounds
             FROM ${this.from} TABLESAMPLE SYSTEM ($1)`,
      values: [percent, fractions],
    };
  }
}
