-- Run on a source node: how far the slot of the source → target pair is
-- behind the source's WAL ($1 = source id, $2 = target id). No row when the
-- pair has no slot (yet, or any more).
SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint AS lag_bytes, s.active
FROM pg_replication_slots s
WHERE s.slot_name = steep_repl.replication_name($1, $2)
