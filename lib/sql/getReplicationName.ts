import { Queryable } from './queryable';

// The one name of a source → target pair's publication, subscription and slot.
export async function getReplicationName(db: Queryable, sourceId: string, targetId: string): Promise<string> {
  return (await db.query('SELECT steep_repl.replication_name($1, $2) AS name', [sourceId, targetId])).rows[0].name;
}
