import { Queryable } from './queryable';

// An audit row and a NOTIFY on steep_repl_events.
export async function emitEvent(db: Queryable, event: string, nodeId: string | null, details: Record<string, unknown> = {}): Promise<number> {
  return Number((await db.query('SELECT steep_repl.emit_event($1, $2, $3) AS id', [event, nodeId, details])).rows[0].id);
}
