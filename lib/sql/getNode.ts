import { Queryable } from './queryable';

// A node's address from a registry; steep_repl.get_node raises SR001 for an unknown id.
export interface RegisteredNode {
  node_id: string;
  host: string;
  port: number;
  dbname: string;
  user?: string;
}

export async function getNode(db: Queryable, nodeId: string): Promise<RegisteredNode> {
  const { rows } = await db.query('SELECT node_id, host, port, dbname, user_name AS user FROM steep_repl.get_node($1)', [nodeId]);
  return { ...rows[0], user: rows[0].user ?? undefined };
}
