// What a bad command must leave untouched: every registry row and the audit
// trail's length.
import { query } from './clusters';

export interface RegistryState {
  nodes: unknown;
  audit_rows: number;
}

export async function registryState(url: string): Promise<RegistryState> {
  const [row] = await query(
    url,
    `SELECT (SELECT coalesce(json_agg(n ORDER BY n.node_id), '[]') FROM steep_repl.nodes n) AS nodes,
            (SELECT count(*)::int FROM steep_repl.audit_log) AS audit_rows`,
  );
  return row as RegistryState;
}
