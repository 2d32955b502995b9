import { Queryable } from './queryable';
import { InitSlot } from './prepareManualSlot';

// On the source (node prepare, step 2, right after the slot exists): its
// consistent LSN and, for pg_dump, the snapshot exported with it.
export async function recordManualSlot(source: Queryable, slotName: string, lsn: string, snapshotName?: string | null): Promise<InitSlot> {
  const { rows } = await source.query('SELECT * FROM steep_repl.record_manual_slot($1, $2, $3)', [slotName, lsn, snapshotName ?? null]);
  return rows[0];
}
