import { Queryable } from './queryable';

export type ManualBackup = 'pg_dump' | 'pg_basebackup';

// A row of steep_repl.init_slots: a slot prepared on the source for a later
// init of for_node. lsn is null until the slot exists (record_manual_slot).
export interface InitSlot {
  slot_name: string;
  for_node: string;
  purpose: 'reverse' | 'manual' | 'two-phase';
  publication: string | null;
  lsn: string | null;
  created_at: Date;
  expires_at: Date;
  // manual only: the backup, the snapshot pg_dump reads, the source's timeline when the slot was made
  backup: ManualBackup | null;
  snapshot_name: string | null;
  timeline: number | null;
}

export interface ManualPrepareOptions {
  // seconds, or an interval text such as '7 days' (60 s to a year; default 7 days)
  expires?: number | string;
}

// On the source (node prepare, step 1): the pair's publication and the
// slot's row. The caller then creates the slot (a statement of its own)
// named row.slot_name and records it with recordManualSlot.
export async function prepareManualSlot(source: Queryable, target: string, backup: ManualBackup, options: ManualPrepareOptions = {}): Promise<InitSlot> {
  const { rows } = await source.query('SELECT * FROM steep_repl.prepare_manual_slot($1, $2, $3)', [target, backup, options]);
  return rows[0];
}
