import { Queryable } from './queryable';

// The id this database is registered under, if it is.
export async function localNodeId(db: Queryable): Promise<string | null> {
  return (await db.query('SELECT steep_repl.local_node_id() AS id')).rows[0].id;
}
