// A node's own database, where its init runs and its progress lives: --db
// when that is the node, else the node's address from the registry --db holds.
import { Client, ClientConfig } from 'pg';
import { clientConfig, connectTo, connectToNode, describeTarget, nodeClientConfig } from '../lib/connection';
import { isNotInstalled, notInstalledError } from '../lib/errors';
import { getNode } from '../lib/sql/getNode';
import { localNodeId } from '../lib/sql/localNodeId';

export interface NodeConnection {
  client: Client;
  config: ClientConfig;
  resolvedFromRegistry: boolean;
}

export async function connectToNodeDatabase(db: string | undefined, nodeId: string, app: string): Promise<NodeConnection> {
  const client = await connectTo(db, app);
  try {
    if ((await localNodeId(client)) === nodeId) return { client, config: clientConfig(db, app), resolvedFromRegistry: false };
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
