-- Run on the node holding them: the slots prepared for a later init
-- (init_slots) with what each costs now. retained_bytes is the WAL the
-- server keeps for it (from the slot's restart_lsn); wal_status 'lost'
-- means max_slot_wal_keep_size let the server remove WAL it needed, and the
-- slot can no longer be used. slot_exists false: dropped by someone else.
-- A manual prepare's row also says its backup, the snapshot pg_dump reads
-- and the timeline the slot was made on; holder_pid is the session holding
-- that snapshot open (node prepare's), NULL once it is gone.
CREATE OR REPLACE FUNCTION steep_repl.prepared_slots()
RETURNS TABLE (slot_name text, for_node text, purpose text, publication text, lsn pg_lsn, created_at timestamptz,
               expires_at timestamptz, slot_exists boolean, active boolean, wal_status text, retained_bytes bigint,
               backup text, snapshot_name text, timeline integer, holder_pid integer)
LANGUAGE sql STABLE AS $$
  SELECT i.slot_name, i.for_node, i.purpose, i.publication, i.lsn, i.created_at, i.expires_at,
         r.slot_name IS NOT NULL, coalesce(r.active, false), r.wal_status::text,
         CASE WHEN r.restart_lsn IS NOT NULL
              THEN greatest(0, pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), r.restart_lsn))::bigint END,
         i.backup, i.snapshot_name, i.timeline,
         steep_repl.snapshot_holder(i.snapshot_name)
  FROM steep_repl.init_slots i
  LEFT JOIN pg_catalog.pg_replication_slots r ON r.slot_name = i.slot_name AND r.database = current_database()
  ORDER BY i.created_at, i.slot_name
$$;
