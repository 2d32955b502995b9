-- Run on a source: what the server says now of each steep-repl slot of
-- this database (replication_objects: a pair's slot, or one prepared for a
-- later init), for observe_replication. retained_bytes is the WAL kept for
-- it (from restart_lsn); safe_wal_size is NULL unless max_slot_wal_keep_size
-- is set. inactive_since exists from PostgreSQL 17 on (read from the row as
-- JSON; NULL before).
CREATE OR REPLACE FUNCTION steep_repl.slot_facts()
RETURNS TABLE (name text, peer_node_id text, prepared boolean, slot_active boolean, active_pid integer, wal_status text,
               safe_wal_size bigint, retained_bytes bigint, restart_lsn pg_lsn, confirmed_flush_lsn pg_lsn,
               inactive_since timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT o.name, o.peer_node, o.kind = 'prepared slot', sl.active, sl.active_pid, sl.wal_status::text, sl.safe_wal_size,
         CASE WHEN sl.restart_lsn IS NOT NULL
              THEN greatest(0, pg_catalog.pg_wal_lsn_diff(
                     CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()
                          ELSE pg_catalog.pg_current_wal_lsn() END, sl.restart_lsn))::bigint END,
         sl.restart_lsn, sl.confirmed_flush_lsn,
         (to_jsonb(sl) ->> 'inactive_since')::timestamptz
  FROM steep_repl.replication_objects() o
  JOIN pg_catalog.pg_replication_slots sl ON sl.slot_name = o.name AND sl.database = current_database()
  WHERE o.kind IN ('slot', 'prepared slot')
$$;
