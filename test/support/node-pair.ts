// Node databases on any clusters, registered with each other the way a DBA
// registers a pair: each registry knows itself (the local node) and its peer.
import { escapeIdentifier } from 'pg';
import { Cluster } from '../../lib/embedded-cluster';
import { listNodes } from '../../lib/sql/listNodes';
import { registerNode } from '../../lib/sql/registerNode';
import { createNodeDatabase, NodeDatabaseOptions, query, withClient } from './clusters';

export interface NodeDb {
  id: string;
  cluster: Cluster;
  name: string;
  url: string;
}

// A new database with steep_repl installed, known as node `id` once registered.
export async function createNodeDb(cluster: Cluster, tag: string, id: string, options: NodeDatabaseOptions = {}): Promise<NodeDb> {
  return { id, cluster, ...(await createNodeDatabase(cluster, tag, options)) };
}

// Registers `node` in the registry of `registry`'s database, as the local
// node when it is that database itself; reached as `user` (default: the
// cluster's own).
export async function registerIn(registry: NodeDb, node: NodeDb, user = node.cluster.user): Promise<void> {
  await withClient(registry.url, (client) =>
    registerNode(client, {
      node_id: node.id,
      host: node.cluster.host,
      port: node.cluster.port,
      dbname: node.name,
      user,
      is_local: registry.url === node.url,
    }),
  );
}

// Both registries know both nodes. A registry that knows a node already (a
// source that served an earlier target) keeps its row.
export async function registerPair(a: NodeDb, b: NodeDb): Promise<void> {
  for (const registry of [a, b]) {
    const known = new Set((await withClient(registry.url, listNodes)).map((n) => n.node_id));
    for (const node of [registry, registry === a ? b : a]) {
      if (!known.has(node.id)) await registerIn(registry, node);
    }
  }
}

// Subscriptions and inactive slots an interrupted init may leave behind
// would block DROP DATABASE. A subscription is dropped with its slot where
// the source lets it, else detached from it (the slot stays and goes next);
// publications last, for a source that serves another target after.
export async function dropReplicationObjects(dbs: Array<{ cluster: Cluster; name: string; url: string }>): Promise<void> {
  for (const db of dbs) {
    const subs = await query(db.url, 'SELECT subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())').catch(() => []);
    for (const { subname } of subs) {
      const id = escapeIdentifier(subname);
      if (await query(db.url, `DROP SUBSCRIPTION ${id}`).then(() => true, () => false)) continue;
      await query(db.url, `ALTER SUBSCRIPTION ${id} DISABLE`).catch(() => undefined);
      await query(db.url, `ALTER SUBSCRIPTION ${id} SET (slot_name = NONE)`).catch(() => undefined);
      await query(db.url, `DROP SUBSCRIPTION IF EXISTS ${id}`).catch(() => undefined);
    }
  }
  for (const db of dbs) {
    await query(db.cluster.url(), 'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active', [
      db.name,
    ]).catch(() => undefined);
    const pubs = await query(db.url, 'SELECT pubname FROM pg_publication').catch(() => []);
    for (const { pubname } of pubs) await query(db.url, `DROP PUBLICATION IF EXISTS ${escapeIdentifier(pubname)}`).catch(() => undefined);
  }
}
