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
  // connection), null once it let go
  snapshot_holder_pid: number | null;
}

// The snapshot's holder: a slot made with an exported snapshot is not
// active while its walsender holds the snapshot (idle in transaction), so
// the holder is found by its transaction: an exported snapshot's name is
// <proc number>-<local xid>-<n> in hex, and the holder holds the lock on
// its own virtual transaction id <proc number>/<local xid>.
export async function listPreparedSlots(db: Queryable, slotName?: string): Promise<PreparedSlot[]> {
  const { rows } = await db.query(
    `SELECT p.slot_name, p.for_node, p.purpose, p.publication, p.lsn::text, p.created_at, p.expires_at, p.slot_exists, p.active,
            p.wal_status, p.retained_bytes::float8 AS retained_bytes, p.backup, p.snapshot_name, p.timeline,
            (SELECT l.pid FROM pg_catalog.pg_locks l
              WHERE l.locktype = 'virtualxid'
                AND l.virtualxid = (SELECT ('x' || lpad(m[1], 16, '0'))::bit(64)::bigint || '/' || ('x' || lpad(m[2], 16, '0'))::bit(64)::bigint
                                      FROM regexp_match(p.snapshot_name, '^([0-9A-F]{8})-([0-9A-F]{8})-[0-9]+$') m)
              LIMIT 1) AS snapshot_holder_pid
     FROM steep_repl.prepared_slots() p
     WHERE $1::text IS NULL OR p.slot_name = $1`,
    [slotName ?? null],
  );
  return rows;
}
