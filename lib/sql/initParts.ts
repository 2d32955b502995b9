import { Queryable, TableName } from './queryable';

// A row of steep_repl.init_parts.
export type Split = 'whole' | 'key' | 'ctid';

// Where a part lies: the leaf it reads and its range there (an init's
// part, a snapshot's in its manifest).
export interface PartPlace {
  leaf_schema: string;
  leaf_name: string;
  part_no: number;
  part_count: number;
  split: Split;
  key_column: string | null;
  // [range_start, range_end) as decimal text; null is open
  range_start: string | null;
  range_end: string | null;
}

// Just those fields of a row that has more, in this order.
export const partPlace = (p: PartPlace): PartPlace => ({
  leaf_schema: p.leaf_schema,
  leaf_name: p.leaf_name,
  part_no: p.part_no,
  part_count: p.part_count,
  split: p.split,
  key_column: p.key_column,
  range_start: p.range_start,
  range_end: p.range_end,
});

export interface Part extends TableName, PartPlace {
  bytes_estimate: number;
  rows_estimate: number;
  state?: 'pending' | 'copying' | 'done' | 'resync' | 'resynced';
  copies?: number;
}

// steep_repl.plan_init_parts: records the plan once; returns how many parts there are.
export async function planInitParts(db: Queryable, nodeId: string, parts: Part[]): Promise<number> {
  const { rows } = await db.query('SELECT steep_repl.plan_init_parts($1, $2) AS n', [nodeId, JSON.stringify(parts)]);
  return rows[0].n;
}

// The init's parts as recorded, ranges as decimal text.
export async function listInitParts(db: Queryable, nodeId: string): Promise<Part[]> {
  const { rows } = await db.query(
    `SELECT schema_name, table_name, leaf_schema, leaf_name, part_no, part_count, split, key_column,
            range_start::text AS range_start, range_end::text AS range_end, bytes_estimate::float8 AS bytes_estimate,
            rows_estimate::float8 AS rows_estimate, state, copies
     FROM steep_repl.init_parts WHERE node_id = $1 ORDER BY schema_name, table_name, leaf_schema, leaf_name, part_no`,
    [nodeId],
  );
  return rows;
}

// A worker takes the part; its row (copies counted) or none when it is no longer to do.
export async function startInitPart(db: Queryable, nodeId: string, part: Part, worker: number): Promise<{ copies: number } | undefined> {
  const { rows } = await db.query('SELECT copies FROM steep_repl.start_init_part($1, $2, $3, $4, $5)', [
    nodeId,
    part.leaf_schema,
    part.leaf_name,
    part.part_no,
    worker,
  ]);
  return rows[0]?.copies == null ? undefined : rows[0];
}

// The snapshot is lost: the tables not complete on it go to PostgreSQL's table sync.
export async function resyncInitParts(db: Queryable, nodeId: string): Promise<TableName[]> {
  return (await db.query('SELECT schema_name, table_name FROM steep_repl.resync_init_parts($1)', [nodeId])).rows;
}

export async function resyncedInitParts(db: Queryable, nodeId: string): Promise<number> {
  return (await db.query('SELECT steep_repl.resynced_init_parts($1) AS n', [nodeId])).rows[0].n;
}
