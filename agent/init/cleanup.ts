// Removes everything an init created: the subscription on the target, its
// slots and the publication on the source, and the rows it copied (emptied
// without replicating). Safe to run again after a partial earlier run.
import { Client } from 'pg';
import { dropPublication } from './publication';
import { dropSubscription, findSubscription } from './subscription';
import { ident, literal } from './quoting';
import { truncateWithoutReplicating, TableName } from './target-tables';

export interface CleanupResult {
  removed: string[];
  // Left behind because the source could not be reached, with how to drop them.
  leftOnSource: string[];
}

export async function cleanupInit(options: {
  target: Client;
  source?: Client;
  name: string;
  tables: TableName[];
  emptyTables: boolean;
  // Recorded when the subscription was created: a cleanup that runs again
  // after the subscription is gone still finds its table-sync slots.
  subscriptionOid?: number;
}): Promise<CleanupResult> {
  const { target, source, name } = options;
  const result: CleanupResult = { removed: [], leftOnSource: [] };
  const subscriptionOid = (await findSubscription(target, name))?.oid ?? options.subscriptionOid;
  const dropped = await dropSubscription(target, name);
  if (dropped !== 'absent') result.removed.push(`subscription ${name}`);

  // Slots the subscription may have left: its own and its table-sync slots.
  const slotPatterns = [name, ...(subscriptionOid ? [`pg_${subscriptionOid}_sync_%`] : [])];
  if (source) {
    const { rows } = await source.query(
      `SELECT slot_name, active_pid FROM pg_replication_slots
       WHERE database = current_database() AND (slot_name = $1 OR slot_name LIKE ANY ($2::text[]))`,
      [name, slotPatterns],
    );
    for (const slot of rows) {
      // The walsender still holding it is ended first (waiting up to 5 s for it).
      if (slot.active_pid) await source.query('SELECT pg_terminate_backend($1, 5000)', [slot.active_pid]);
      await source.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot.slot_name]);
      result.removed.push(`slot ${slot.slot_name}`);
    }
    await dropPublication(source, name);
    result.removed.push(`publication ${name}`);
  } else {
    const patterns = slotPatterns.map((p) => `slot_name LIKE ${literal(p)}`).join(' OR ');
    result.leftOnSource.push(
      `slots: SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE ${patterns}`,
      `publication: DROP PUBLICATION IF EXISTS ${ident(name)}`,
    );
  }

  if (options.emptyTables && options.tables.length) {
    await truncateWithoutReplicating(target, options.tables);
    result.removed.push(`rows of ${options.tables.length} table(s)`);
  }
  return result;
}
