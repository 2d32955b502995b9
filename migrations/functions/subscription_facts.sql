-- Run on a target: what the server says now of each steep-repl subscription
-- of this database (replication_objects: pg_subscription is shared by the
-- cluster, so filtered by subdbid), for observe_replication. The leader
-- apply worker is the row without relid (table sync workers have one) and,
-- from 16, without leader_pid (parallel apply workers have one); from 17
-- its worker_type is 'apply'. conflicts: every confl_* counter of
-- pg_stat_subscription_stats (PostgreSQL 18 and later), read from the row
-- as JSON so counters a later release adds are taken too; NULL before 18.
-- tables_syncing: tables of the subscription whose sync has not finished
-- (pg_subscription_rel state neither synchronized nor ready).
CREATE OR REPLACE FUNCTION steep_repl.subscription_facts()
RETURNS TABLE (name text, peer_node_id text, subscription_oid oid, enabled boolean, slot_name text, worker_pid integer,
               received_lsn pg_lsn, latest_end_lsn pg_lsn, last_msg_receipt_time timestamptz,
               apply_error_count bigint, sync_error_count bigint, tables_syncing integer, conflicts jsonb)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_version integer := current_setting('server_version_num')::integer;
BEGIN
  RETURN QUERY EXECUTE format(
    $q$SELECT o.name, o.peer_node, s.oid, s.subenabled, s.subslotname::text, w.pid,
              w.received_lsn, w.latest_end_lsn, w.last_msg_receipt_time,
              st.apply_error_count, st.sync_error_count,
              (SELECT count(*)::integer FROM pg_catalog.pg_subscription_rel r WHERE r.srsubid = s.oid AND r.srsubstate NOT IN ('s', 'r')),
              (SELECT jsonb_object_agg(substr(e.key, 7), e.value ORDER BY e.key)
                 FROM jsonb_each(to_jsonb(st)) e WHERE e.key LIKE 'confl\_%%')
         FROM steep_repl.replication_objects() o
         JOIN pg_catalog.pg_subscription s
           ON s.subname = o.name AND s.subdbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
         LEFT JOIN (SELECT DISTINCT ON (x.subid) x.subid, x.pid, x.received_lsn, x.latest_end_lsn, x.last_msg_receipt_time
                      FROM pg_catalog.pg_stat_subscription x
                     WHERE x.pid IS NOT NULL AND x.relid IS NULL%s
                     ORDER BY x.subid, x.pid) w ON w.subid = s.oid
         LEFT JOIN pg_catalog.pg_stat_subscription_stats st ON st.subid = s.oid
        WHERE o.kind = 'subscription'$q$,
    CASE WHEN v_version >= 170000 THEN ' AND x.leader_pid IS NULL AND x.worker_type = ''apply'''
         WHEN v_version >= 160000 THEN ' AND x.leader_pid IS NULL'
         ELSE '' END);
END $$;
