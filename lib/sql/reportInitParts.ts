import { ProgressStats, ReportedProgress } from './reportInitProgress';
import { Queryable } from './queryable';

// What a copy worker measured of the part it copies.
export interface PartReport {
  leaf_schema: string;
  leaf_name: string;
  part_no: number;
  rows_copied: number;
  bytes_copied: number;
}

// steep_repl.report_init_parts: the parts being copied, and the tables' progress that follows from all parts.
export async function reportInitParts(db: Queryable, nodeId: string, parts: PartReport[], stats: ProgressStats = {}): Promise<ReportedProgress> {
  const { rows } = await db.query('SELECT * FROM steep_repl.report_init_parts($1, $2, $3)', [nodeId, JSON.stringify(parts), stats]);
  return rows[0];
}
