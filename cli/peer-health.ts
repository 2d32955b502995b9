// A node's health as its own database sees it, for node list and node
// status. The registry of the --db database has a peer's row only as its
// last probe saw it (reachable or not), while the peer's own agent records
// its heartbeat and replication in the peer's database: each peer is read
// there, at its registry address, in parallel and with the live view's short
// timeouts. The registry's probe status is the last resort, and said so.
import { Client } from 'pg';
import { connect, ConnectionError } from '../lib/connection';
import { quoteIdent } from '../lib/identifiers';
import { answered, peerConfig, problemOf } from '../lib/node-reach';
import { getNodeOverview, NodeOverview } from '../lib/sql/listNodes';

// 'own database': the node's own database was asked (its row there, or
// unreachable when it did not answer); 'registry': it answered but could
// not tell (no steep_repl there, the node not local there), so the row is
// the registry's as the last probe from this database left it.
export type HealthFrom = 'own database' | 'registry';
export type NodeHealthView = NodeOverview & { health_from: HealthFrom };

// What the node's own row decides: its health and why, what its agent's
// watch found, and its agent's last heartbeat.
const ownFields = [
  'health',
  'health_reason',
  'replication',
  'replication_lag_bytes',
  'replication_lag_seconds',
  'replication_observed_at',
  'last_seen',
  'seconds_since_seen',
] as const;

const address = (n: NodeOverview): string => `${n.host}:${n.port}/${n.dbname}`;

// Every row with its own health; the local row is its own database's already.
export function withOwnHealth(rows: NodeOverview[], applicationName: string): Promise<NodeHealthView[]> {
  return Promise.all(rows.map((row) => ownHealth(row, applicationName)));
}

export async function ownHealth(row: NodeOverview, applicationName: string): Promise<NodeHealthView> {
  if (row.is_local) return { ...row, health_from: 'own database' };
  const where = `node ${quoteIdent(row.node_id)} at ${address(row)}`;
  let client: Client | undefined;
  try {
    client = await connect(peerConfig(row, applicationName), where);
    const own = await getNodeOverview(client, row.node_id);
    if (!own) return fromRegistry(row, `${quoteIdent(row.node_id)} is not registered there`);
    if (!own.is_local) return fromRegistry(row, 'it is registered there, not as the local node');
    const view: NodeHealthView = { ...row, health_from: 'own database' };
    for (const key of ownFields) (view as unknown as Record<string, unknown>)[key] = own[key] ?? null;
    // a database older than 0.9.0 has no watch: no replication column at all
    if (own.replication === undefined) delete view.replication;
    return view;
  } catch (err) {
    if (answered(err)) return fromRegistry(row, problemOf(err));
    return {
      ...row,
      health: 'unreachable',
      health_reason: err instanceof ConnectionError ? err.message : `cannot read ${where}: ${problemOf(err)}`,
      health_from: 'own database',
    };
  } finally {
    // a hung query is cut (pg destroys the socket), an idle session says goodbye
    await client?.end().catch(() => undefined);
  }
}

// The registry's probe status, with why the node's own database could not tell.
function fromRegistry(row: NodeOverview, problem: string): NodeHealthView {
  const own = `its own database at ${address(row)} could not tell (${problem}); shown as this database's registry has it`;
  return { ...row, health_reason: row.health_reason ? `${row.health_reason}; ${own}` : own, health_from: 'registry' };
}
