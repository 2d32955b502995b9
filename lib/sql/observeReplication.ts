import type { ReplicationHealthRow } from './listNodes';
import { Queryable } from './queryable';

// What the agent read on a subscription's source (observe_replication's
// p_sources value): its WAL flush position (replay position in recovery),
// the slot's confirmed position and activity, and whether the slot exists
// (false: the source was reached and has no slot of that name; the other
// two are then null), or why it could not be asked.
export type SourceFacts =
  | { current_lsn: string; confirmed_flush_lsn: string | null; slot_active: boolean | null; slot_exists?: boolean | null }
  | { error: string };

// One observation round (steep_repl.observe_replication): records the
// facts of this node's subscriptions and slots, decides their health, emits
// replication.degraded / replication.recovered on change. Sources keyed by
// subscription name; one not given was not asked (no lag). The rows after
// the round, kind then name, as JSON (as node_overview.replication).
export async function observeReplication(db: Queryable, sources: Record<string, SourceFacts> = {}): Promise<ReplicationHealthRow[]> {
  const { rows } = await db.query('SELECT to_jsonb(r) AS row FROM steep_repl.observe_replication($1::jsonb) r', [JSON.stringify(sources)]);
  return rows.map((r) => r.row);
}
