import { Queryable } from './queryable';

// A row of steep_repl.prepared_slots(): a slot this database holds for a
// later init (init_slots) and the WAL it retains now.
export interface PreparedSlot {
  slot_name: string;
  for_node: string;
  purpose: string;
  publication: string | null;
  // null while the slot is being made
  lsn: string | null;
  created_at: Date;
  expires_at: Date;
  slot_exists: boolean;
  active: boolean;
  wal_status: string | null;
  retained_bytes: number | null;
  // manual: the DBA's backup, the snapshot pg_dump reads, the timeline the slot was made on
  backup: 'pg_dump' | 'pg_basebackup' | null;
  snapshot_name: string | null;
  timeline: number | null;
  // the session holding snapshot_name open (node prepare's replication
  // connection; the slot is not active meanwhile), null once it let go
  holder_pid: number | null;
}

export async function listPreparedSlots(db: Queryable, slotName?: string): Promise<PreparedSlot[]> {
  const { rows } = await db.query(
    `SELECT slot_name, for_node, purpose, publication, lsn::text, created_at, expires_at, slot_exists, active, wal_status,
            retained_bytes::float8 AS retained_bytes, backup, snapshot_name, timeline, holder_pid
     FROM steep_repl.prepared_slots()
     WHERE $1::text IS NULL OR slot_name = $1`,
    [slotName ?? null],
  );
  return rows;
}
