-- One row per snapshot generated on this node, for snapshot list and the
-- live view: its state, files, size, expiry, and what its slot costs now
-- (retained WAL from the slot's restart_lsn; wal_status lost: the slot
-- cannot be used). applies_in_flight: init_slots of purpose two-phase that
-- stream through its publication (copies of its slot, one per target).
CREATE OR REPLACE VIEW steep_repl.snapshot_overview AS
SELECT s.snapshot_id, s.source_node_id, s.state, s.consistent_lsn, s.output_dir, s.compression,
       t.bytes_stored AS stored_bytes, t.bytes_written AS raw_bytes, t.rows_written AS rows, t.parts_total AS parts,
       t.parts_done, t.tables_total AS tables, t.overall_percent,
       s.created_at, s.finished_at, s.expires_at,
       CASE WHEN sl.restart_lsn IS NOT NULL
            THEN greatest(0, pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), sl.restart_lsn))::bigint END AS retained_wal_bytes,
       sl.wal_status::text AS wal_status, sl.safe_wal_size, sl.slot_name IS NOT NULL AS slot_exists,
       (SELECT count(*)::int FROM steep_repl.init_slots i WHERE i.purpose = 'two-phase' AND i.publication = s.publication) AS applies_in_flight,
       s.slot_name, s.publication, s.parallel, s.error, s.hint
FROM steep_repl.snapshots s
CROSS JOIN LATERAL steep_repl.snapshot_totals(s.snapshot_id) t
LEFT JOIN pg_catalog.pg_replication_slots sl ON sl.slot_name = s.slot_name AND sl.database = current_database();
