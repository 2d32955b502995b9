// The snapshot commands read snapshots where they live: on their source's
// own database. A node named on the command line is reached as node
// commands reach one (connectToNodeDatabase); without one, every node the
// --db registry lists is asked in turn, and one that cannot be reached is
// reported, not fatal.
import { Client } from 'pg';
import { clientConfig, connect, describeTarget, nodeClientConfig } from '../lib/connection';
import { errorFields, isNotInstalled, notInstalledError } from '../lib/errors';
import { listNodes } from '../lib/sql/listNodes';
import { connectToNodeDatabase } from './node-connection';

export interface Unreached {
  node_id: string;
  error: string;
}

// Runs fn on each registered node's own database (or only on nodeId's).
export async function onSnapshotNodes<R>(
  db: string | undefined,
  nodeId: string | undefined,
  app: string,
  fn: (client: Client, nodeId: string) => Promise<R>,
): Promise<{ results: Array<{ node_id: string; result: R }>; unreached: Unreached[] }> {
  if (nodeId !== undefined) {
    const { client } = await connectToNodeDatabase(db, nodeId, app);
    try {
      return { results: [{ node_id: nodeId, result: await fn(client, nodeId) }], unreached: [] };
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  const registry = await connect(clientConfig(db, app), describeTarget(db));
  const results: Array<{ node_id: string; result: R }> = [];
  const unreached: Unreached[] = [];
  try {
    const nodes = await listNodes(registry).catch((err) => {
      throw isNotInstalled(err) ? notInstalledError(describeTarget(db)) : err;
    });
    for (const node of nodes) {
      let client: Client | undefined;
      try {
        // the --db node as the user reached it, the others at their registry address
        client = node.is_local
          ? registry
          : await connect(
              nodeClientConfig({ host: node.host, port: node.port, dbname: node.dbname, user: node.user_name ?? undefined }, app),
              `node ${node.node_id} at ${node.host}:${node.port}/${node.dbname}`,
            );
        results.push({ node_id: node.node_id, result: await fn(client, node.node_id) });
      } catch (err) {
        const { error } = errorFields(err);
        unreached.push({ node_id: node.node_id, error: isNotInstalled(err) ? `steep_repl (0.5.0 or later) is not installed there: ${error}` : error });
      } finally {
        if (client && client !== registry) await client.end().catch(() => undefined);
      }
    }
  } finally {
    await registry.end().catch(() => undefined);
  }
  return { results, unreached };
}
