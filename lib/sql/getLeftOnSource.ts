import { Queryable } from './queryable';

// What the last cancel of a node could not remove because its source was
// away (init.cancelled details.left_on_source): statements to run there.
export async function getLeftOnSource(db: Queryable, nodeId: string): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT details -> 'left_on_source' AS left FROM steep_repl.audit_log
     WHERE node_id = $1 AND event = 'init.cancelled' ORDER BY audit_id DESC LIMIT 1`,
    [nodeId],
  );
  return rows[0]?.left ?? [];
}
