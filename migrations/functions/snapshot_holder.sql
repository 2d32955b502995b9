-- The session holding an exported snapshot open, while it does: a snapshot
-- name is the exporting transaction's virtual xid in hex (procNumber-lxid)
-- plus a counter, and that transaction holds the lock on its virtual xid
-- (pg_locks shows it as decimal 'procNumber/lxid'). A slot made with
-- (SNAPSHOT 'export') is not active while its snapshot is held, so this is
-- how node prepare's holder is found (a walsender: a replication connection
-- exported it). NULL: the snapshot is gone.
CREATE OR REPLACE FUNCTION steep_repl.snapshot_holder(p_snapshot_name text) RETURNS integer
LANGUAGE sql STABLE AS $$
  SELECT l.pid FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid AND a.backend_type = 'walsender'
   WHERE p_snapshot_name ~ '^[0-9A-Fa-f]{1,8}-[0-9A-Fa-f]{1,8}-[0-9]+$'
     AND l.locktype = 'virtualxid' AND l.granted AND l.mode = 'ExclusiveLock'
     AND l.virtualxid = format('%s/%s', ('x' || lpad(split_part(p_snapshot_name, '-', 1), 8, '0'))::bit(32)::integer,
                                        ('x' || lpad(split_part(p_snapshot_name, '-', 2), 16, '0'))::bit(64)::bigint)
   LIMIT 1
$$;
