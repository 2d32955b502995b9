import { LabelledTable, Queryable } from './queryable';

export interface ReplicatedTable extends LabelledTable {
  partitioned: boolean;
  // false when neither a primary key nor a replica identity lets UPDATE and DELETE replicate
  has_identity: boolean;
  rows_total: number;
  bytes_total: number;
}

// Run on the source: what an init copies (steep_repl.replicated_tables).
// Row counts come from reltuples, so tables never analyzed are analyzed
// first and their percentages mean something.
export async function listReplicatedTables(source: Queryable): Promise<ReplicatedTable[]> {
  const read = async () =>
    (
      await source.query(
        `SELECT schema_name, table_name, label, partitioned, has_identity, rows_total::float8 AS rows_total,
                bytes_total::float8 AS bytes_total, unanalyzed
         FROM steep_repl.replicated_tables()`,
      )
    ).rows;
  let rows = await read();
  const unanalyzed: string[] = rows.flatMap((r) => r.unanalyzed ?? []);
  if (unanalyzed.length) {
    await source.query(`ANALYZE ${unanalyzed.join(', ')}`);
    rows = await read();
  }
  return rows.map(({ unanalyzed: _, ...t }) => t);
}
