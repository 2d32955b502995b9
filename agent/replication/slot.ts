// Logical slots on the source: their position, and removing them (making
// one with an exported snapshot is lib/slot-with-snapshot.ts).
import { Client } from 'pg';

// The source's WAL insert position (see steep_repl.slot_lag for why not
// pg_current_wal_lsn()): the catch-up target once every table is copied.
export async function currentLsn(source: Client): Promise<string> {
  return (await source.query('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0].lsn;
}

// Slots of this database with one of these names or matching a LIKE pattern.
export async function findSlots(
  source: Client,
  names: string[],
  likePatterns: string[] = [],
): Promise<Array<{ slot_name: string; active_pid: number | null }>> {
  const { rows } = await source.query(
    `SELECT slot_name, active_pid FROM pg_replication_slots
     WHERE database = current_database() AND (slot_name = ANY ($1::text[]) OR slot_name LIKE ANY ($2::text[]))`,
    [names, likePatterns],
  );
  return rows;
}

// The walsender still holding it is ended first (waiting up to 5 s for it).
export async function dropSlot(source: Client, slot: { slot_name: string; active_pid: number | null }): Promise<void> {
  if (slot.active_pid) await source.query('SELECT pg_terminate_backend($1, 5000)', [slot.active_pid]);
  await source.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot.slot_name]);
}
