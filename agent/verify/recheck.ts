// Lag-aware: a difference found while the pair replicates may only be a
// change the node has not applied yet. Each round reads the candidates on
// the peer (v1), waits until the node applied past the peer's position
// after that read, reads them on the node (w) and on the peer again (v2).
// w = v1 or w = v2: the node holds what the peer held, resolved. v1 = v2
// ≠ w: the peer did not change and the node, past it, still differs:
// persistent. Otherwise the row keeps changing on the peer: next round;
// what is left after the last round is unsettled.
import { Side } from './session';

// One value per key present on that side (a row hash, or a count of
// identical rows); a key absent from the map is absent there.
export type ReadValues = (side: Side, keys: string[]) => Promise<Map<string, string>>;

export interface Persistent {
  // on the peer and on the node, undefined where absent
  peer: string | undefined;
  node: string | undefined;
}

export interface RecheckResult {
  persistent: Map<string, Persistent>;
  unsettled: string[];
  rounds: number;
}

export interface RecheckOptions {
  rounds?: number;
  // resolves once the node applied past the peer's current position
  settle(): Promise<void>;
  signal?: AbortSignal;
  onRound?(round: number, open: number): void;
}

export async function recheck(peer: Side, node: Side, keys: string[], read: ReadValues, options: RecheckOptions): Promise<RecheckResult> {
  const persistent = new Map<string, Persistent>();
  let open = keys;
  let round = 0;
  for (const last = options.rounds ?? 5; open.length && round < last; ) {
    round += 1;
    options.onRound?.(round, open.length);
    options.signal?.throwIfAborted();
    const v1 = await read(peer, open);
    await options.settle();
    const w = await read(node, open);
    const v2 = await read(peer, open);
    const next: string[] = [];
    for (const key of open) {
      const [a, b, n] = [v1.get(key), v2.get(key), w.get(key)];
      if (n === a || n === b) continue;
      if (a === b) persistent.set(key, { peer: a, node: n });
      else next.push(key);
    }
    open = next;
  }
  return { persistent, unsettled: open, rounds: round };
}

// Reads in batches, so one statement never carries too many keys.
export function batched(read: ReadValues, size: number): ReadValues {
  return async (side, keys) => {
    const out = new Map<string, string>();
    for (let i = 0; i < keys.length; i += size) {
      for (const [k, v] of await read(side, keys.slice(i, i + size))) out.set(k, v);
    }
    return out;
  };
}
