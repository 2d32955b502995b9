import { Queryable } from './queryable';
import { NodeRow } from './registerNode';

export async function removeNode(db: Queryable, nodeId: string): Promise<NodeRow> {
  return (await db.query('SELECT * FROM steep_repl.remove_node($1)', [nodeId])).rows[0];
}
