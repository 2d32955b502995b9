// An init's parts as the tests of the part-copying methods (direct,
// two-phase) look at them, and a one-line summary for their output.
import { query } from './clusters';
import type { InitPair } from './init-pair';

export interface PartRow {
  table: string;
  leaf_name: string;
  part_no: number;
  part_count: number;
  split: string;
  state: string;
  copies: number;
  rows_copied: number;
  rows_estimate: number;
}

export const partKey = (p: PartRow) => `${p.leaf_name}#${p.part_no}`;
// leaf#part state×copies rows, for each part
export const brief = (parts: PartRow[]) => parts.map((p) => `${partKey(p)} ${p.state}×${p.copies} ${p.rows_copied}`).join(', ');

export async function partsOf(pair: InitPair): Promise<PartRow[]> {
  return query<PartRow>(
    pair.target.url,
    `SELECT quote_ident(schema_name) || '.' || quote_ident(table_name) AS table, leaf_name, part_no, part_count, split, state, copies, rows_copied::float8 AS rows_copied,
            rows_estimate::float8 AS rows_estimate
     FROM steep_repl.init_parts WHERE node_id = $1 ORDER BY schema_name, table_name, leaf_name, part_no`,
    [pair.target.id],
  );
}
