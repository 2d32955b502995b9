// Lag of the subscription: the source's WAL position against what the
// subscription's slot has confirmed as applied. The insert position, not
// pg_current_wal_lsn() (the write position): with synchronous_commit = off a
// commit can sit in WAL buffers behind the write position, and a target
// taken from it could be confirmed before that commit arrived.
import { Client } from 'pg';

export interface SlotLag {
  currentLsn: string;
  confirmedLsn: string | null;
  lagBytes: number | null;
  reached: boolean;
}

export async function currentLsn(source: Client): Promise<string> {
  return (await source.query('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0].lsn;
}

export async function slotLag(source: Client, slotName: string, targetLsn: string): Promise<SlotLag> {
  const { rows } = await source.query(
    `SELECT pg_current_wal_insert_lsn()::text AS current_lsn, s.confirmed_flush_lsn::text AS confirmed_lsn,
            pg_wal_lsn_diff(pg_current_wal_insert_lsn(), s.confirmed_flush_lsn)::float8 AS lag_bytes,
            coalesce(s.confirmed_flush_lsn >= $2::pg_lsn, false) AS reached
     FROM (SELECT 1) one LEFT JOIN pg_replication_slots s ON s.slot_name = $1`,
    [slotName, targetLsn],
  );
  const r = rows[0];
  return {
    currentLsn: r.current_lsn,
    confirmedLsn: r.confirmed_lsn,
    lagBytes: r.lag_bytes === null ? null : Math.max(0, Number(r.lag_bytes)),
    reached: r.reached,
  };
}
