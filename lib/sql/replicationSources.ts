import { Queryable } from './queryable';

// A steep-repl subscription of this node whose source is a registered node,
// with where to reach that node (steep_repl.replication_sources()).
export interface ReplicationSource {
  subscription: string;
  source_node: string;
  // the subscription's slot on the source (null: slot_name = NONE)
  slot_name: string | null;
  host: string;
  port: number;
  dbname: string;
  user_name: string | null;
}

export async function replicationSources(db: Queryable): Promise<ReplicationSource[]> {
  const { rows } = await db.query(
    'SELECT subscription, source_node, slot_name, host, port, dbname, user_name FROM steep_repl.replication_sources()',
  );
  return rows;
}
