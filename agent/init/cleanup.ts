// Removes everything an init created, found from what its method recorded:
// the subscription on the target (by oid: a rename does not hide it), its
// slots and the publication on the source (by oid or name), and the rows it
// copied (emptied without replicating); for two-phase, the slot copied from
// the snapshot's and its init_slots row, never the snapshot's own slot or
// publication; for a manual init, its prepared slot (ending node prepare's
// snapshot holder), the publication and the init_slots row, but never the
// rows: they are the DBA's restored copy. Then it looks again on both sides:
// what it reports as left is what it found there afterwards, and a source it
// could not reach is said to be unchecked. Safe to run again after a
// partial earlier run.
import { Client } from 'pg';
import { redactSecrets } from '../../lib/connection';
import { MethodState } from '../../lib/sql/getInitStatus';
import { TableName } from '../../lib/sql/queryable';
import { truncateWithoutReplicating } from '../replication/origin';
import { dropPublication, publicationExists } from '../replication/publication';
import { dropSlot, findSlots } from '../replication/slot';
import { dropSubscription, findSubscription } from '../replication/subscription';
import { keepPreparedSlot } from '../replication/topology';
import { dropLine, mayExistOnSource, onSourceObjects, onTarget, slotPatterns } from './existing-objects';
import { isConnectionError } from './failure';

export interface CleanupResult {
  removed: string[];
  // Found on the source after the cleanup, or, when it could not be
  // reached, what may be there: "kind: statement to run there".
  leftOnSource: string[];
  // Found on the target after the cleanup (statements to run here).
  leftOnTarget: string[];
  sourceChecked: boolean;
  sourceError?: string;
}

export async function cleanupInit(options: {
  target: Client;
  source?: Client;
  state: MethodState;
  tables: TableName[];
}): Promise<CleanupResult> {
  const { target, state } = options;
  let source = options.source;
  let sourceError: string | undefined;
  const removed: string[] = [];
  const subscription = await findSubscription(target, state.replication_name, state.subscription_oid);
  if (subscription) {
    await dropSubscription(target, subscription.name);
    removed.push(`subscription ${subscription.name}`);
  }
  const subscriptionOid = subscription?.oid ?? state.subscription_oid;

  // a slot the source prepared for this pair is not this init's (topology.ts)
  let kept: string[] = [];
  if (source) {
    try {
      // only a two-phase or a manual init has one (and only they may need to write steep_repl's tables on the source)
      const slotName = state.slot_name ?? state.replication_name;
      if (state.snapshot_id && (await releasePreparedSlot(source, slotName, 'two-phase'))) removed.push(`slot ${slotName}`);
      if (state.backup) {
        const publication = (await publicationExists(source, state.replication_name)) ? state.replication_name : undefined;
        if (await releasePreparedSlot(source, slotName, 'manual')) removed.push(`slot ${slotName}`);
        if (publication && !(await publicationExists(source, publication))) removed.push(`publication ${publication}`);
      }
      kept = await keepPreparedSlot(source, state.slot_name ?? state.replication_name, !!subscription);
      const { names, like } = slotPatterns(state, subscriptionOid, subscription?.slot_name);
      for (const slot of (await findSlots(source, names, like)).filter((s) => !kept.includes(s.slot_name))) {
        await dropSlot(source, slot);
        removed.push(`slot ${slot.slot_name}`);
      }
      // by the oid the plan recorded, so a renamed publication goes too
      const { rows } = await source.query('SELECT pubname FROM pg_publication WHERE pubname = $1 OR oid = $2::int8::oid', [
        state.replication_name,
        state.source_publication?.oid ?? null,
      ]);
      for (const { pubname } of rows.filter((r) => !kept.includes(r.pubname))) {
        await dropPublication(source, pubname);
        removed.push(`publication ${pubname}`);
      }
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      sourceError = redactSecrets((err as Error).message);
      source = undefined;
    }
  }

  // The reverse of a pair copied nothing: its tables hold the node's own
  // rows; a manual init's hold the DBA's restore (copy_data is not yet
  // recorded while it waits for node complete).
  if (state.copy_data !== false && !state.backup && options.tables.length) {
    await truncateWithoutReplicating(target, options.tables);
    removed.push(`rows of ${options.tables.length} table(s)`);
  }

  // Looked at afterwards, not assumed.
  const leftOnTarget = (await onTarget(target, { ...state, subscription_oid: subscriptionOid })).map(dropLine);
  let leftOnSource: string[] | undefined;
  if (source) {
    try {
      leftOnSource = (await onSourceObjects(source, state, subscriptionOid)).filter((o) => !kept.includes(o.name)).map(dropLine);
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      sourceError = redactSecrets((err as Error).message);
    }
  }
  if (leftOnSource) return { removed, leftOnSource, leftOnTarget, sourceChecked: true };
  return {
    removed,
    leftOnSource: mayExistOnSource(state, subscriptionOid).map(dropLine),
    leftOnTarget,
    sourceChecked: false,
    sourceError,
  };
}

// The init's own prepared slot, expired now (expire_prepared_slot.sql): the
// slot goes unless a walsender streams from it (then the loop in
// cleanupInit drops it). Two-phase: the slot copied from the snapshot's;
// the snapshot's publication goes only once no live snapshot or other apply
// needs it, and the snapshot's own slot is never touched. Manual: the slot
// node prepare made for this node; node prepare's snapshot holder is ended
// and the pair's publication goes with it. Returns whether the slot was
// dropped here.
async function releasePreparedSlot(source: Client, slotName: string, purpose: 'two-phase' | 'manual'): Promise<boolean> {
  const { rows } = await source.query("SELECT to_regclass('steep_repl.init_slots') IS NOT NULL AS installed");
  if (!rows[0].installed) return false;
  const mine = await source.query('UPDATE steep_repl.init_slots SET expires_at = now() WHERE slot_name = $1 AND purpose = $2 RETURNING slot_name', [slotName, purpose]);
  if (!mine.rows.length) return false;
  const existed = (await findSlots(source, [slotName])).length > 0;
  const { rows: done } = await source.query('SELECT steep_repl.expire_prepared_slot($1) AS outcome', [slotName]);
  return existed && done[0].outcome === 'expired';
}
