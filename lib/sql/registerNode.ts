import { Queryable } from './queryable';

export interface NodeRegistration {
  node_id: string;
  host: string;
  port?: number;
  dbname: string;
  user?: string | null;
  priority?: number;
  name?: string | null;
  // this registry's own database
  is_local?: boolean;
}

export interface NodeRow {
  node_id: string;
  node_name: string;
  host: string;
  port: number;
  dbname: string;
  user_name: string | null;
  priority: number;
  status: string;
  last_seen: Date | null;
  init_state: string;
  init_source_node: string | null;
  init_started_at: Date | null;
  init_completed_at: Date | null;
  is_local: boolean;
  registered_at: Date;
}

export async function registerNode(db: Queryable, node: NodeRegistration): Promise<NodeRow> {
  const { rows } = await db.query(
    `SELECT * FROM steep_repl.register_node(p_node_id => $1, p_host => $2, p_port => $3, p_dbname => $4, p_user_name => $5,
                                            p_priority => $6, p_node_name => $7, p_is_local => $8)`,
    [node.node_id, node.host, node.port ?? 5432, node.dbname, node.user ?? null, node.priority ?? 50, node.name ?? null, node.is_local ?? false],
  );
  return rows[0];
}
