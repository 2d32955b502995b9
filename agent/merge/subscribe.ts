// Step 5: a subscription on each node from the other's merge-point slot,
// copy_data = false (the exchange made the rows alike as of the merge
// points) and origin = none (neither forwards what it applies, so nothing
// loops), streaming every change written since the merge point. Made once:
// a resumed job finds them. Then the wait until each slot confirmed its
// publisher's position read after subscribing.
import { Client } from 'pg';
import { quoteIdent } from '../../lib/identifiers';
import { getSlotLag, SlotLag } from '../../lib/sql/getSlotLag';
import { pause } from '../init/wait';
import { findSlots } from '../replication/slot';
import { createSubscription, findSubscription } from '../replication/subscription';
import { ApplyWatch } from './apply-errors';
import { MergeError } from './errors';
import { PairNames } from './names';
import { PeerSession } from './sessions';

export interface Conninfos {
  // how each node's server reaches the other (no password: its pgpass)
  a: string;
  b: string;
}

async function subscribeFrom(
  publisher: Client,
  subscriber: Client,
  name: string,
  conninfo: string,
  names: { publisher: string; subscriber: string },
): Promise<boolean> {
  if (await findSubscription(subscriber, name)) return false;
  if (!(await findSlots(publisher, [name])).length) {
    throw new MergeError(
      `the merge point slot ${name} is gone from node ${quoteIdent(names.publisher)}: node ${quoteIdent(names.subscriber)} cannot subscribe from it`,
      'error',
      'the changes written since the merge point cannot be replayed; merge again (steep-repl node merge) once the nodes are reset (node cancel)',
    );
  }
  await createSubscription(subscriber, { name, conninfo, publication: name, slotName: name, copyData: false, createSlot: false, origin: 'none' });
  return true;
}

// Returns the subscriptions it made (none when both existed).
export async function subscribeBoth(a: Client, b: PeerSession, names: PairNames, conninfo: Conninfos, nodes: { a: string; b: string }): Promise<string[]> {
  const made: string[] = [];
  if (await b.run((cb) => subscribeFrom(a, cb, names.ab, conninfo.a, { publisher: nodes.a, subscriber: nodes.b }))) made.push(`${names.ab} on node ${nodes.b}`);
  if (await b.run((cb) => subscribeFrom(cb, a, names.ba, conninfo.b, { publisher: nodes.b, subscriber: nodes.a }))) made.push(`${names.ba} on node ${nodes.a}`);
  return made;
}

export interface CatchUp {
  a: SlotLag;
  b: SlotLag;
}

// Until B applied A up to A's position now and A applied B's likewise.
export async function waitCaughtUp(
  a: Client,
  b: PeerSession,
  names: PairNames,
  nodes: { a: string; b: string },
  deadline: number,
  signal: AbortSignal,
  onLag: (lag: CatchUp) => Promise<void> | void,
  watch?: ApplyWatch,
): Promise<CatchUp> {
  const targetA = (await getSlotLag(a, names.ab)).current_lsn;
  const targetB = (await b.run((cb) => getSlotLag(cb, names.ba))).current_lsn;
  for (let every = 50; ; every = Math.min(every * 2, 500)) {
    signal.throwIfAborted();
    const lag = { a: await getSlotLag(a, names.ab, targetA), b: await b.run((cb) => getSlotLag(cb, names.ba, targetB)) };
    for (const [slot, node, l] of [[names.ab, nodes.a, lag.a], [names.ba, nodes.b, lag.b]] as const) {
      if (!l.slot_exists) throw new MergeError(`the slot ${slot} on node ${quoteIdent(node)} no longer exists`, 'error', 'see steep-repl node status on both nodes');
    }
    if (lag.a.reached && lag.b.reached) return lag;
    await onLag(lag);
    await watch?.check();
    if (Date.now() >= deadline) {
      const behind = (to: string, from: string, target: string, slot: string, l: SlotLag) =>
        `node ${quoteIdent(to)} has not applied node ${quoteIdent(from)}'s changes up to ${target} (slot ${slot} confirmed ${l.confirmed_lsn ?? 'nothing'})`;
      const late = [
        ...(lag.a.reached ? [] : [behind(nodes.b, nodes.a, targetA, names.ab, lag.a)]),
        ...(lag.b.reached ? [] : [behind(nodes.a, nodes.b, targetB, names.ba, lag.b)]),
      ];
      throw new MergeError(
        `the subscriptions did not catch up within the merge's timeout: ${late.join('; ')}`,
        'timeout',
        'the subscriptions stay; see steep-repl node status and the apply errors in the server logs, then node verify once they have caught up',
      );
    }
    await pause(every, [signal]);
  }
}
