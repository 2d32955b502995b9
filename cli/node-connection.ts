// A node's own database, where its init runs and its progress lives: --db
// when that is the node, else the node's address from the registry --db holds.
import { Client, ClientConfig } from 'pg';
import { clientConfig, connectTo, connectToNode, describeTarget, getNode, nodeClientConfig } from '../lib/connection';
import { isNotInstalled, notInstalledError } from '../lib/errors';

export interface NodeConnection {
  client: Client;
  config: ClientConfig;
  resolvedFromRegistry: boolean;
}

export async function connectToNodeDatabase(db: string | undefined, nodeId: string, app: string): Promise<NodeConnection> {
  const client = await connectTo(db, app);
  try {
    const { rows } = await client.query('SELECT steep_repl.local_node_id() AS local', []);
    if (rows[0].local === nodeId) return { client, config: clientConfig(db, app), resolvedFromRegistry: false };
    const node = await getNode(client, nodeId);
    const own = await connectToNode(node, app);
    await client.end();
    return { client: own, config: nodeClientConfig(node, app), resolvedFromRegistry: true };
  } catch (err) {
    await client.end().catch(() => undefined);
    // As withClient says it for the other commands: a hint, not a SQL error.
    throw isNotInstalled(err) ? notInstalledError(describeTarget(db)) : err;
  }
}
