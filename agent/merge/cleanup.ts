// Removes the replication objects of a merge pair on both nodes: the
// subscriptions first (each drops its slot on the other node where it
// can), then slots and publications of the pair's names. Run before a
// merge makes its merge points (leftovers of an earlier attempt), and when
// a merge fails before its exchange or is cancelled. Each node on its own:
// one that cannot be reached is reported, the other is still cleaned.
import { Client } from 'pg';
import { redactSecrets } from '../../lib/connection';
import { dropPublication, publicationExists } from '../replication/publication';
import { dropSlot, findSlots } from '../replication/slot';
import { dropSubscription, findSubscription } from '../replication/subscription';
import { PairNames } from './names';
import { PeerSession } from './sessions';

export interface Removal {
  removed: string[];
  // per node that could not be cleaned, why
  failed: string[];
}

async function dropNodeSubscription(client: Client, where: string, subscription: string, out: Removal): Promise<void> {
  if (!(await findSubscription(client, subscription))) return;
  await dropSubscription(client, subscription);
  out.removed.push(`subscription ${subscription} on ${where}`);
}

// The node's own slot and publication (of the name it publishes under).
async function dropNodeSource(client: Client, where: string, own: string, out: Removal): Promise<void> {
  for (const slot of await findSlots(client, [own])) {
    await dropSlot(client, slot);
    out.removed.push(`slot ${slot.slot_name} on ${where}`);
  }
  if (await publicationExists(client, own)) {
    await dropPublication(client, own);
    out.removed.push(`publication ${own} on ${where}`);
  }
}

export async function removeReplicationObjects(a: Client, b: PeerSession, names: PairNames, nodeA: string, nodeB: string): Promise<Removal> {
  const out: Removal = { removed: [], failed: [] };
  const attempt = async (where: string, work: () => Promise<void>) => {
    try {
      await work();
    } catch (err) {
      out.failed.push(`node ${where}: ${redactSecrets((err as Error).message)}`);
    }
  };
  // both subscriptions before any slot: a subscription dropped drops its
  // slot on the other node, and no apply worker is left to restart on one gone
  await attempt(nodeB, () => b.run((client) => dropNodeSubscription(client, `node ${nodeB}`, names.ab, out)));
  await attempt(nodeA, () => dropNodeSubscription(a, `node ${nodeA}`, names.ba, out));
  await attempt(nodeB, () => b.run((client) => dropNodeSource(client, `node ${nodeB}`, names.ba, out)));
  await attempt(nodeA, () => dropNodeSource(a, `node ${nodeA}`, names.ab, out));
  return out;
}
