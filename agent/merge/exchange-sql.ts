// The SQL text a merge runs for one table besides the verify's (table-sql.ts):
// rows read by key on a reader (the merge point) and written on a writer.
// Keys travel as the canonical key JSON texts the comparison found (never
// parsed in JS: a bigint or numeric key keeps every digit), rows as
// to_jsonb text, read back with jsonb_populate_record on the other node
// (columns matched by name, as the shapes were compared).
import { Client } from 'pg';
import { ident, qualified } from '../replication/quoting';
import { TableSql } from '../verify/table-sql';
import { TableShape } from '../verify/table-shape';

export interface Statement {
  text: string;
  values: unknown[];
}

// A JSON array of JSON texts, put together as text.
export const jsonArray = (items: string[]): string => `[${items.join(',')}]`;

// Columns a merge writes: every one but generated columns (their values follow).
export async function writableColumns(client: Client, shape: TableShape): Promise<string[]> {
  const { rows } = await client.query(
    `SELECT a.attname::text AS name FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
     ORDER BY a.attnum`,
    [qualified(shape)],
  );
  return rows.map((r) => r.name);
}

export class ExchangeSql {
  private readonly table: string;
  // ONLY for a plain table (an inheritance parent's own rows), as TableSql reads
  private readonly from: string;

  constructor(
    readonly shape: TableShape,
    readonly sql: TableSql,
    // writable columns (writableColumns), the same on both nodes' shapes
    readonly columns: string[],
  ) {
    this.table = qualified(shape);
    this.from = `${shape.partitioned ? '' : 'ONLY '}${this.table}`;
  }

  // The whole rows of these keys: k (key JSON), r (to_jsonb), h (row hash).
  rowsByKeys(keys: string[]): Statement {
    return {
      text: `SELECT ${this.sql.keyJson} AS k, to_jsonb(t)::text AS r, ${this.sql.rowHash}::text AS h FROM ${this.from} t WHERE ${this.sql.keyIn(1)}`,
      values: [jsonArray(keys)],
    };
  }

  // Which of these keys the table holds now.
  existing(keys: string[]): Statement {
    return { text: `SELECT ${this.sql.keyJson} AS k FROM ${this.from} t WHERE ${this.sql.keyIn(1)}`, values: [jsonArray(keys)] };
  }

  // One column's value as text (last-modified), NULL as null.
  columnByKeys(column: string, keys: string[]): Statement {
    return {
      text: `SELECT ${this.sql.keyJson} AS k, t.${ident(column)}::text AS v FROM ${this.from} t WHERE ${this.sql.keyIn(1)}`,
      values: [jsonArray(keys)],
    };
  }

  // Rows another node holds, inserted where their key is free: what is
  // returned went in; a key left out met a row (its key, or another unique
  // constraint). OVERRIDING SYSTEM VALUE: an identity column keeps the
  // other node's value.
  insert(rows: string[]): Statement {
    const cols = this.columns.map(ident);
    return {
      text: `INSERT INTO ${this.table} AS t (${cols.join(', ')}) OVERRIDING SYSTEM VALUE
             SELECT ${cols.map((c) => `x.${c}`).join(', ')} FROM jsonb_populate_recordset(NULL::${this.table}, $1::jsonb) AS x
             ON CONFLICT DO NOTHING RETURNING ${this.sql.keyJson} AS k`,
      values: [jsonArray(rows)],
    };
  }

  // Whether a conflict's losing row can be overwritten at all: a table
  // whose every writable column is in its key has nothing to set.
  get updatable(): boolean {
    return this.setColumns.length > 0;
  }

  private get setColumns(): string[] {
    const key = new Set(this.shape.key.map((c) => c.name));
    return this.columns.filter((c) => !key.has(c));
  }

  // The winning rows over the losing ones, each only while the row here is
  // still the one the comparison saw (its hash h): a row changed since the
  // merge point keeps that change, which replicates to the other node.
  // items: JSON texts {"r": row, "h": hash, "o": columns that replace r's (manual rows)}.
  update(items: string[]): Statement {
    const set = this.setColumns.map((c) => `${ident(c)} = x.${ident(c)}`);
    const keyMatch = this.shape.key.map((c) => `t.${ident(c.name)} = x.${ident(c.name)}`);
    return {
      text: `UPDATE ${this.from} AS t SET ${set.join(', ')}
             FROM jsonb_array_elements($1::jsonb) AS e(v),
                  LATERAL jsonb_populate_record(NULL::${this.table}, (e.v -> 'r') || coalesce(e.v -> 'o', '{}'::jsonb)) AS x
             WHERE ${keyMatch.join(' AND ')} AND ${this.sql.rowHash}::text = e.v ->> 'h'
             RETURNING ${this.sql.keyJson} AS k`,
      values: [jsonArray(items)],
    };
  }

  // An update item as update() reads it.
  static item(row: string, loserHash: string, overlay?: string): string {
    return `{"r":${row},"h":${literalJson(loserHash)}${overlay ? `,"o":${overlay}` : ''}}`;
  }
}

const literalJson = (text: string): string => JSON.stringify(text);

