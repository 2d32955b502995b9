import { Queryable } from './queryable';
import { ManualBackup } from './prepareManualSlot';

export interface ManualPrepareCancelled {
  slot_name: string;
  for_node: string;
  backup: ManualBackup | null;
  slot_dropped: boolean;
  // the pid of node prepare's snapshot holder it ended, if one held the slot
  holder_terminated: number | null;
  publication: string | null;
  publication_dropped: boolean;
}

// On the source: the manual prepare for target goes (slot, publication, row, expiry).
export async function cancelManualPrepare(source: Queryable, target: string): Promise<ManualPrepareCancelled> {
  const { rows } = await source.query('SELECT steep_repl.cancel_manual_prepare($1) AS r', [target]);
  return rows[0].r;
}
