// Removes everything an init created, found from what its method recorded:
// the subscription on the target (by oid), its slots and the publication on
// the source, and the rows it copied (emptied without replicating). Safe to
// run again after a partial earlier run.
import { Client } from 'pg';
import { MethodState } from '../../lib/sql/getInitStatus';
import { TableName } from '../../lib/sql/queryable';
import { truncateWithoutReplicating } from '../replication/origin';
import { dropPublication } from '../replication/publication';
import { ident, literal } from '../replication/quoting';
import { dropSlot, findSlots } from '../replication/slot';
import { dropSubscription, findSubscription } from '../replication/subscription';

export interface CleanupResult {
  removed: string[];
  // Left behind because the source could not be reached, with how to drop them.
  leftOnSource: string[];
}

export async function cleanupInit(options: {
  target: Client;
  source?: Client;
  state: MethodState;
  tables: TableName[];
}): Promise<CleanupResult> {
  const { target, source, state } = options;
  const name = state.replication_name;
  const result: CleanupResult = { removed: [], leftOnSource: [] };
  const subscription = await findSubscription(target, name, state.subscription_oid);
  if (subscription) {
    await dropSubscription(target, subscription.name);
    result.removed.push(`subscription ${subscription.name}`);
  }

  // Slots the subscription may have left: its own and its table-sync slots.
  const subscriptionOid = subscription?.oid ?? state.subscription_oid;
  const slotName = state.slot_name ?? name;
  const syncSlots = subscriptionOid ? [`pg\\_${subscriptionOid}\\_sync\\_%`] : [];
  if (source) {
    for (const slot of await findSlots(source, [slotName], syncSlots)) {
      await dropSlot(source, slot);
      result.removed.push(`slot ${slot.slot_name}`);
    }
    await dropPublication(source, name);
    result.removed.push(`publication ${name}`);
  } else {
    const patterns = [`slot_name = ${literal(slotName)}`, ...syncSlots.map((p) => `slot_name LIKE ${literal(p)}`)].join(' OR ');
    result.leftOnSource.push(
      `slots: SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE ${patterns}`,
      `publication: DROP PUBLICATION IF EXISTS ${ident(name)}`,
    );
  }

  // The reverse of a pair copied nothing: its tables hold the node's own rows.
  if (state.copy_data !== false && options.tables.length) {
    await truncateWithoutReplicating(target, options.tables);
    result.removed.push(`rows of ${options.tables.length} table(s)`);
  }
  return result;
}
