// What a bad command must leave untouched: every registry row and the audit
// trail's length. Left out: what a running agent's replication watch moves
// meanwhile (the local row's replication_observed_at, replication.* events).
import { query } from './clusters';

export interface RegistryState {
  nodes: unknown;
  audit_rows: number;
}

export async function registryState(url: string): Promise<RegistryState> {
  const [row] = await query(
    url,
    `SELECT (SELECT coalesce(jsonb_agg(to_jsonb(n) - 'replication_observed_at' ORDER BY n.node_id), '[]') FROM steep_repl.nodes n) AS nodes,
            (SELECT count(*)::int FROM steep_repl.audit_log WHERE event NOT LIKE 'replication.%') AS audit_rows`,
  );
  return row as RegistryState;
}
