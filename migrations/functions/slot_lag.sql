-- Run on a source: how far a slot is behind this server's WAL, the one lag
-- figure the agent's catch-up, node progress and the live view all show.
-- Measured from the insert position, not pg_current_wal_lsn() (the write
-- position): with synchronous_commit = off a commit can sit in WAL buffers
-- behind the write position, and a catch-up target taken from it could be
-- confirmed before that commit arrived. One row always; slot_exists false
-- when there is no such slot. reached: confirmed at or past p_target_lsn.
CREATE OR REPLACE FUNCTION steep_repl.slot_lag(p_slot_name text, p_target_lsn pg_lsn DEFAULT NULL)
RETURNS TABLE (slot_exists boolean, active boolean, current_lsn pg_lsn, confirmed_lsn pg_lsn, lag_bytes bigint, reached boolean)
LANGUAGE sql STABLE AS $$
  SELECT s.slot_name IS NOT NULL, coalesce(s.active, false), pg_catalog.pg_current_wal_insert_lsn(), s.confirmed_flush_lsn,
         -- greatest() skips NULLs: no slot must stay no figure, not 0
         CASE WHEN s.confirmed_flush_lsn IS NOT NULL
              THEN greatest(0, pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_insert_lsn(), s.confirmed_flush_lsn))::bigint END,
         coalesce(s.confirmed_flush_lsn >= p_target_lsn, false)
  FROM (SELECT 1) one
  LEFT JOIN pg_catalog.pg_replication_slots s ON s.slot_name = p_slot_name
$$;
