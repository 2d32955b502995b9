// node detach: removes the replication objects of every pair the node is
// in, on both sides, then checks every side again and records what it
// removed and what is left (node.detached). For a pair the node receives
// (source P → node): the subscription here, then the slot, the table-sync
// slots and the publication on P. For a pair the node feeds (node → P): the
// subscription on P (P is then detached too: uninitialized, rows kept),
// then the slot and publication here. Slots prepared for a later init
// (init_slots) go on both sides. Rows stay everywhere.
//
// An agent task rather than CLI code: it works from psql
// (SELECT steep_repl.detach_node(...)), it connects to the peers the way an
// init does (the agent's environment and pgpass), and a detach cut short
// by the agent's shutdown runs again.
import { Client } from 'pg';
import { connectTo, connectToNode } from '../../lib/connection';
import { shellWord } from '../../lib/format';
import { emitEvent } from '../../lib/sql/emitEvent';
import { getInitStatus } from '../../lib/sql/getInitStatus';
import { getReplicationName } from '../../lib/sql/getReplicationName';
import { finishDetach, listReplicationObjects } from '../../lib/sql/detachNode';
import { listNodes, NodeOverview } from '../../lib/sql/listNodes';
import { localNodeId } from '../../lib/sql/localNodeId';
import { dropPublication, publicationExists } from '../replication/publication';
import { literal } from '../replication/quoting';
import { dropSlot, findSlots } from '../replication/slot';
import { dropSubscription, findSubscription } from '../replication/subscription';
import { SteepTask } from '../task';

const detachable = ['synchronized', 'diverged', 'failed'];

class Refusal extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

interface Peer {
  node: NodeOverview;
  client?: Client;
  error?: string;
}

export const detach_node: SteepTask = async (payload, ctx) => {
  const nodeId = String(payload.node_id);
  const local = await connectTo(ctx.connectionString, 'steep-repl detach');
  local.on('error', () => undefined);
  const peers: Peer[] = [];
  const log = (level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown> = {}) =>
    ctx.logger.log(level, event, { node_id: nodeId, job_id: ctx.jobId, ...fields });
  try {
    if ((await localNodeId(local)) !== nodeId) throw new Refusal(`this agent's database is not node ${nodeId}`, 'run node detach against the node itself');
    const self = await getInitStatus(local, nodeId);
    if (self.in_progress) {
      throw new Refusal(`node ${nodeId} is ${self.state}: an initialization is in progress`, `cancel it first: steep-repl node cancel ${shellWord(nodeId)}`);
    }
    for (const node of (await listNodes(local)).filter((n) => n.node_id !== nodeId)) {
      const peer: Peer = { node };
      try {
        peer.client = await connectToNode({ ...node, user: node.user_name ?? undefined }, 'steep-repl detach', ctx.shutdown);
        peer.client.on('error', () => undefined);
      } catch (err) {
        if (ctx.shutdown.aborted) throw err;
        peer.error = (err as Error).message;
        log('warn', 'node.detach_peer_unreachable', { peer: node.node_id, error: peer.error });
      }
      peers.push(peer);
    }
    // Refused before anything changes: a peer copying from this node.
    for (const peer of peers.filter((p) => p.client)) {
      const status = await peerStatus(peer);
      if (status && status.source_node_id === nodeId && status.in_progress) {
        throw new Refusal(
          `node ${peer.node.node_id} is ${status.state} from node ${nodeId}`,
          `cancel that initialization first: steep-repl node cancel ${shellWord(peer.node.node_id)}`,
        );
      }
    }

    const removed: string[] = [];
    const detachedPeers: string[] = [];
    const sourceId = self.source_node_id;
    for (const peer of peers) {
      const peerId = peer.node.node_id;
      // source peer → this node
      const inbound = await getReplicationName(local, peerId, nodeId);
      const oid = sourceId === peerId ? self.method_state?.subscription_oid : null;
      const sub = (await findSubscription(local, inbound, oid)) ?? (oid ? await findSubscription(local, inbound) : undefined);
      if (sub) {
        const how = await dropSubscription(local, sub.name);
        removed.push(`subscription ${sub.name} on ${nodeId}${how === 'dropped_without_slot' ? ' (its slot on ' + peerId + ' could not be dropped with it)' : ''}`);
      }
      if (peer.client) {
        removed.push(...(await dropSourceSide(peer.client, peerId, inbound, sub?.oid)));
        removed.push(...(await dropPreparedSlots(peer.client, peerId, nodeId)));
      }
      // this node → target peer
      const outbound = await getReplicationName(local, nodeId, peerId);
      let peerSub: { oid: number } | undefined;
      if (peer.client) {
        const status = await peerStatus(peer);
        const peerOid = status?.source_node_id === nodeId ? status.method_state?.subscription_oid : null;
        const found = (await findSubscription(peer.client, outbound, peerOid)) ?? (peerOid ? await findSubscription(peer.client, outbound) : undefined);
        if (found) {
          await dropSubscription(peer.client, found.name);
          removed.push(`subscription ${found.name} on ${peerId}`);
          peerSub = found;
        }
        if (status && (found || (status.source_node_id === nodeId && detachable.includes(status.state)))) {
          await finishDetach(peer.client, peerId, {
            job_id: ctx.jobId,
            reason: `its source ${nodeId} was detached`,
            detached_with: nodeId,
            removed: found ? [`subscription ${found.name}`] : [],
          });
          detachedPeers.push(peerId);
        }
      }
      removed.push(...(await dropSourceSide(local, nodeId, outbound, peerSub?.oid)));
    }
    removed.push(...(await dropPreparedSlots(local, nodeId)));

    // The result is what a second look finds, on every side it can reach.
    const left = (await listReplicationObjects(local, nodeId)).map((o) => `${o.kind} ${o.name} on ${nodeId} (${o.drop_statement})`);
    const checked = [nodeId];
    const unreachable: Array<{ node_id: string; error: string; check: string }> = [];
    for (const peer of peers) {
      if (!peer.client) {
        unreachable.push({
          node_id: peer.node.node_id,
          error: peer.error ?? 'not reached',
          check: `on ${peer.node.host}:${peer.node.port}/${peer.node.dbname}: SELECT * FROM steep_repl.replication_objects(${literal(nodeId)})`,
        });
        continue;
      }
      checked.push(peer.node.node_id);
      for (const o of await listReplicationObjects(peer.client, nodeId)) left.push(`${o.kind} ${o.name} on ${peer.node.node_id} (${o.drop_statement})`);
    }
    const details = { job_id: ctx.jobId, reason: 'node detach', removed, left, checked, unreachable, detached_peers: detachedPeers };
    await finishDetach(local, nodeId, details);
    log(left.length || unreachable.length ? 'warn' : 'info', 'node.detach_completed', details);
  } catch (err) {
    if (ctx.shutdown.aborted) throw err;
    const hint = err instanceof Refusal ? err.hint : (err as { hint?: string }).hint;
    await emitEvent(local, 'node.detach_failed', nodeId, { job_id: ctx.jobId, error: (err as Error).message, ...(hint ? { hint } : {}) });
    log('error', 'node.detach_failed', { error: (err as Error).message, hint });
  } finally {
    await Promise.all(peers.map((p) => p.client?.end().catch(() => undefined)));
    await local.end().catch(() => undefined);
  }
};

// A peer's own view of its init: its local row in its own database.
async function peerStatus(peer: Peer) {
  try {
    return await getInitStatus(peer.client!, peer.node.node_id);
  } catch {
    // not installed, or not registered under this id there
    return undefined;
  }
}

// What a pair's source holds for it: the slot, the table-sync slots of a
// subscription (by its oid) and the publication.
async function dropSourceSide(source: Client, sourceId: string, name: string, subscriptionOid?: number): Promise<string[]> {
  const removed: string[] = [];
  const syncSlots = subscriptionOid ? [`pg\\_${subscriptionOid}\\_sync\\_%`] : [];
  for (const slot of await findSlots(source, [name], syncSlots)) {
    await dropSlot(source, slot);
    removed.push(`slot ${slot.slot_name} on ${sourceId}`);
  }
  if (await publicationExists(source, name)) {
    await dropPublication(source, name);
    removed.push(`publication ${name} on ${sourceId}`);
  }
  return removed;
}

// Slots a node prepared for a later init (steep_repl.init_slots): for one
// node, or all of them when forNode is omitted; with their publications.
async function dropPreparedSlots(db: Client, holderId: string, forNode?: string): Promise<string[]> {
  if (!(await db.query("SELECT to_regclass('steep_repl.init_slots') IS NOT NULL AS present")).rows[0].present) return [];
  const { rows } = await db.query(
    'SELECT slot_name, publication FROM steep_repl.init_slots WHERE $1::text IS NULL OR for_node = $1',
    [forNode ?? null],
  );
  const removed: string[] = [];
  for (const row of rows) {
    for (const slot of await findSlots(db, [row.slot_name])) {
      await dropSlot(db, slot);
      removed.push(`prepared slot ${slot.slot_name} on ${holderId}`);
    }
    if (row.publication && (await publicationExists(db, row.publication))) {
      await dropPublication(db, row.publication);
      removed.push(`publication ${row.publication} on ${holderId}`);
    }
    await db.query('DELETE FROM steep_repl.init_slots WHERE slot_name = $1', [row.slot_name]);
  }
  return removed;
}
