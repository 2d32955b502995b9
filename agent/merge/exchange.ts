// Step 4, the exchange: one writer transaction per node, as replica
// (session_replication_role: no user or foreign-key triggers, as an apply
// worker writes) and under this database's local replication origin, so
// the other node's origin = none subscription, made later from the merge
// point's slot, skips these writes while it carries every other change
// written since. Tables in foreign-key order, rows read from the readers
// (the merge point), never from the tables as they are now:
// - a row only on one node is inserted on the other where its key is free;
//   a key taken meanwhile (written there after the merge point) or a row
//   another unique constraint refuses blocks the exchange;
// - a conflict's winning row replaces the losing one only while that is
//   still the row the comparison saw (its row hash): a row its node
//   changed or deleted since keeps that change, which replicates.
// The foreign keys PostgreSQL does not check as replica are checked here.
// Nothing is committed unless every table went in; the COMMITs (run.ts)
// are the point of no return.
import { Client } from 'pg';
import { quoteIdent } from '../../lib/identifiers';
import { originSessionEnd, originSessionStart } from '../replication/origin';
import { PlannedTable } from './checks';
import { TableDiff } from './compare-tables';
import { MergeError } from './errors';
import { ExchangeSql } from './exchange-sql';
import { describeForeignKey, firstOrphan, ForeignKey } from './foreign-keys';
import { NodeEndpoint, openSession } from './sessions';
import { Decisions } from './strategy';

export interface ExchangeTable {
  p: PlannedTable;
  diff: TableDiff;
  decisions: Decisions;
}

// What the exchange wrote (or could not write) in one table.
export interface TableWrites {
  toA: number;
  toB: number;
  changedDuring: number;
  // keys written on each node, for the foreign-key check
  writtenA: string[];
  writtenB: string[];
  // keys that could not be inserted on that node
  blocked: Array<{ node: 'a' | 'b'; kind: 'concurrent' | 'unique'; keys: string[] }>;
}

export interface Writers {
  a: Client;
  b: Client;
}

// rows per statement
const rowsPerBatch = 5000;

export async function openWriter(endpoint: NodeEndpoint): Promise<Client> {
  // no abort signal: a writer is only ever ended by COMMIT or ROLLBACK
  const writer = await openSession(endpoint, 'steep-repl merge writer');
  try {
    await originSessionStart(writer, 0);
    await writer.query('BEGIN');
    await writer.query('SET LOCAL session_replication_role = replica');
    return writer;
  } catch (err) {
    await writer.end().catch(() => undefined);
    throw err;
  }
}

// Rolled back (when still open) and closed.
export async function closeWriter(writer: Client | undefined): Promise<void> {
  if (!writer) return;
  await writer.query('ROLLBACK').catch(() => undefined);
  await originSessionEnd(writer).catch(() => undefined);
  await writer.end().catch(() => undefined);
}

// A row (to_jsonb text) and its row hash.
export interface RowAndHash {
  r: string;
  h: string;
}

// The rows of these keys as a session sees them, by key.
export async function rowsAt(session: Client, ex: ExchangeSql, keys: string[]): Promise<Map<string, RowAndHash>> {
  const { rows } = await session.query(ex.rowsByKeys(keys));
  return new Map(rows.map((r) => [r.k as string, { r: r.r as string, h: r.h as string }]));
}

export class TableExchange {
  readonly writes: TableWrites = { toA: 0, toB: 0, changedDuring: 0, writtenA: [], writtenB: [], blocked: [] };

  constructor(
    private readonly readers: { a: Client; b: Client },
    private readonly writers: Writers,
    private readonly t: ExchangeTable,
    // rows written so far (progress)
    private readonly onRows: (n: number) => void,
    private readonly signal: AbortSignal,
  ) {}

  // how many rows this table's exchange writes on both nodes together, at most
  static rowsToWrite(t: ExchangeTable): number {
    return t.diff.onlyA.length + t.diff.onlyB.length + t.decisions.winsA.length + t.decisions.winsB.length + 2 * t.decisions.rows.size;
  }

  async run(): Promise<TableWrites> {
    const { diff, decisions } = this.t;
    await this.insert('b', diff.onlyA);
    await this.insert('a', diff.onlyB);
    if (this.t.p.ex.updatable) {
      await this.overwrite('b', decisions.winsA);
      await this.overwrite('a', decisions.winsB);
      await this.resolvedRows([...decisions.rows]);
    }
    return this.writes;
  }

  // Rows only on the other node, inserted on `to`.
  private async insert(to: 'a' | 'b', keys: string[]): Promise<void> {
    const from = to === 'a' ? 'b' : 'a';
    const ex = this.t.p.ex;
    for (let i = 0; i < keys.length; i += rowsPerBatch) {
      this.signal.throwIfAborted();
      const batch = keys.slice(i, i + rowsPerBatch);
      const rows = await rowsAt(this.readers[from], ex, batch);
      const { rows: inserted } = await this.writers[to].query(ex.insert([...rows.values()].map((r) => r.r)));
      const went = new Set(inserted.map((r) => r.k as string));
      this.written(to, [...went]);
      const refused = batch.filter((k) => !went.has(k));
      if (refused.length) {
        const { rows: present } = await this.writers[to].query(ex.existing(refused));
        const taken = new Set(present.map((r) => r.k as string));
        const concurrent = refused.filter((k) => taken.has(k));
        const unique = refused.filter((k) => !taken.has(k));
        if (concurrent.length) this.writes.blocked.push({ node: to, kind: 'concurrent', keys: concurrent });
        if (unique.length) this.writes.blocked.push({ node: to, kind: 'unique', keys: unique });
      }
      this.onRows(batch.length);
    }
  }

  // Conflicts won by the other node: its row over the one on `to`.
  private async overwrite(to: 'a' | 'b', keys: string[]): Promise<void> {
    const from = to === 'a' ? 'b' : 'a';
    const ex = this.t.p.ex;
    for (let i = 0; i < keys.length; i += rowsPerBatch) {
      this.signal.throwIfAborted();
      const batch = keys.slice(i, i + rowsPerBatch);
      const [winners, losers] = await Promise.all([rowsAt(this.readers[from], ex, batch), rowsAt(this.readers[to], ex, batch)]);
      const items = batch.filter((k) => winners.has(k) && losers.has(k)).map((k) => ExchangeSql.item(winners.get(k)!.r, losers.get(k)!.h));
      await this.update(to, items, batch.length);
    }
  }

  // manual 'row': both nodes get A's row with the resolution's columns over it.
  private async resolvedRows(rows: Array<[string, string]>): Promise<void> {
    const ex = this.t.p.ex;
    for (let i = 0; i < rows.length; i += rowsPerBatch) {
      this.signal.throwIfAborted();
      const batch = rows.slice(i, i + rowsPerBatch);
      const keys = batch.map(([k]) => k);
      const [onA, onB] = await Promise.all([rowsAt(this.readers.a, ex, keys), rowsAt(this.readers.b, ex, keys)]);
      const present = batch.filter(([k]) => onA.has(k) && onB.has(k));
      await this.update('a', present.map(([k, o]) => ExchangeSql.item(onA.get(k)!.r, onA.get(k)!.h, o)), batch.length);
      await this.update('b', present.map(([k, o]) => ExchangeSql.item(onA.get(k)!.r, onB.get(k)!.h, o)), batch.length);
    }
  }

  private async update(to: 'a' | 'b', items: string[], batchSize: number): Promise<void> {
    if (items.length) {
      const { rows } = await this.writers[to].query(this.t.p.ex.update(items));
      this.written(to, rows.map((r) => r.k as string));
      // not updated: changed or deleted on that node after the merge point; its change stands
      this.writes.changedDuring += items.length - rows.length;
    }
    this.onRows(batchSize);
  }

  private written(to: 'a' | 'b', keys: string[]): void {
    if (to === 'a') {
      this.writes.toA += keys.length;
      this.writes.writtenA.push(...keys);
    } else {
      this.writes.toB += keys.length;
      this.writes.writtenB.push(...keys);
    }
  }
}

// Every foreign key of a table that received rows on a node, checked for
// the rows written there: a parent missing blocks the exchange.
export async function checkForeignKeys(
  writers: Writers,
  keys: ForeignKey[],
  tables: Array<{ p: PlannedTable; writes: TableWrites }>,
  names: { a: string; b: string },
): Promise<void> {
  for (const node of ['a', 'b'] as const) {
    for (const { p, writes } of tables) {
      const written = node === 'a' ? writes.writtenA : writes.writtenB;
      if (!written.length) continue;
      for (const key of keys.filter((k) => k.table.schema_name === p.table.schema_name && k.table.table_name === p.table.table_name)) {
        const orphan = await firstOrphan(writers[node], key, p.ex, written);
        if (orphan) {
          throw new MergeError(
            `the exchange would break foreign key ${describeForeignKey(key)} on node ${quoteIdent(names[node])}: ` +
              `the row ${orphan} refers to a row the node does not have; nothing was exchanged`,
            'error',
            `merge the referenced table too (--tables), or add the missing row on node ${quoteIdent(names[node])}, then merge again`,
          );
        }
      }
    }
  }
}
