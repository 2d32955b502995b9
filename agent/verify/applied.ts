// Waits until the node has applied the peer's changes up to a position: the
// peer's slot of the node's subscription has confirmed it. A node that does
// not get there in time fails the verify (replication lags or is stalled),
// it is never taken for a difference.
import { getSlotLag } from '../../lib/sql/getSlotLag';
import { pause } from '../init/wait';
import { findSubscription } from '../replication/subscription';
import { VerifyError } from './errors';
import { Side } from './session';

export const applyWaitMs = (): number => {
  const ms = Number(process.env.STEEP_REPL_VERIFY_WAIT_MS);
  return Number.isFinite(ms) && ms > 0 ? ms : 60000;
};

export interface AppliedTarget {
  peer: Side;
  node: Side;
  slot: string;
  subscription: string;
}

// The peer's WAL insert position now (steep_repl.slot_lag's current_lsn).
export async function peerPosition(target: AppliedTarget): Promise<string> {
  return (await getSlotLag(target.peer.client, target.slot)).current_lsn;
}

export async function waitApplied(target: AppliedTarget, lsn: string, signal?: AbortSignal, timeoutMs = applyWaitMs()): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let every = 20; ; every = Math.min(every * 2, 250)) {
    signal?.throwIfAborted();
    const lag = await getSlotLag(target.peer.client, target.slot, lsn);
    if (!lag.slot_exists) {
      throw new VerifyError(
        `the slot ${target.slot} of subscription ${target.subscription} no longer exists on ${target.peer.name}`,
        'the node no longer replicates from that peer: see steep-repl node status',
      );
    }
    if (lag.reached) return;
    if (Date.now() >= deadline) {
      const disabled = (await findSubscription(target.node.client, target.subscription))?.enabled === false;
      throw new VerifyError(
        `${target.node.name} has not applied past ${target.peer.name}'s position ${lsn} within ${Math.round(timeoutMs / 1000)} s ` +
          `(its slot ${target.slot} confirmed ${lag.confirmed_lsn ?? 'nothing'}${lag.active ? '' : ', no walsender streams from it'}): ` +
          (disabled ? `subscription ${target.subscription} is disabled` : 'replication lags or is stalled'),
        disabled
          ? `enable it (ALTER SUBSCRIPTION ${target.subscription} ENABLE) and verify again`
          : 'see steep-repl node status for the lag and the apply errors in the node\'s server log; verify again once it has caught up',
      );
    }
    await pause(every, signal ? [signal] : []);
  }
}

// A pair that replicates both ways (a merged pair): a row may be on its way
// in either direction, so a recheck waits until each node applied past the
// other's position.
export function settleBothWays(toNode: AppliedTarget, toPeer: AppliedTarget, signal?: AbortSignal): () => Promise<void> {
  return async () => {
    const [atPeer, atNode] = await Promise.all([peerPosition(toNode), peerPosition(toPeer)]);
    await Promise.all([waitApplied(toNode, atPeer, signal), waitApplied(toPeer, atNode, signal)]);
  };
}
