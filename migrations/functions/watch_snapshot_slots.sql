-- The watch over the slots of this node's live snapshots (task
-- snapshot_watch, every STEEP_REPL_SNAPSHOT_WATCH_SECONDS): a slot that
-- retains more than p_warn_bytes of WAL, whose wal_status is unreserved
-- (max_slot_wal_keep_size may remove WAL it needs), or that may see less
-- than p_warn_bytes more WAL written before that happens (safe_wal_size;
-- NULL without max_slot_wal_keep_size), is warned of
-- (snapshot.slot_at_risk), again after p_repeat; a ready snapshot whose slot
-- is lost (invalidated) or gone can no longer be applied and fails. Returns
-- {live, at_risk: [... warned: whether this run emitted the event],
-- failed: [...]}: live counts the snapshots still generating or ready (the
-- watch runs again while there are any).
CREATE OR REPLACE FUNCTION steep_repl.watch_snapshot_slots(p_warn_bytes bigint, p_repeat interval DEFAULT '1 hour') RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  r record;
  v_at_risk jsonb := '[]';
  v_failed jsonb := '[]';
  v_reason text;
  v_warning jsonb;
BEGIN
  FOR r IN SELECT s.snapshot_id, s.source_node_id, s.state, s.slot_name, s.wal_warned_at, s.consistent_lsn,
                  sl.slot_name IS NOT NULL AS slot_exists, sl.wal_status::text AS wal_status, sl.safe_wal_size,
                  CASE WHEN sl.restart_lsn IS NOT NULL
                       THEN greatest(0, pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), sl.restart_lsn))::bigint END AS retained_bytes
             FROM steep_repl.snapshots s
             LEFT JOIN pg_catalog.pg_replication_slots sl ON sl.slot_name = s.slot_name AND sl.database = current_database()
            WHERE s.state IN ('generating', 'ready')
            ORDER BY s.created_at LOOP
    -- a generating snapshot's slot exists once its export is recorded
    IF r.state = 'ready' AND (NOT r.slot_exists OR r.wal_status = 'lost') THEN
      v_reason := CASE WHEN r.slot_exists
                       THEN format('its slot %s was invalidated (wal_status lost: the server removed WAL it needed, see max_slot_wal_keep_size)', r.slot_name)
                       ELSE format('its slot %s no longer exists', r.slot_name) END;
      PERFORM steep_repl.finish_snapshot(r.snapshot_id, 'failed', jsonb_build_object(
        'error', format('snapshot %s can no longer be applied: %s', r.snapshot_id, v_reason),
        'hint', 'generate a new one (steep-repl snapshot generate); delete this one to remove its files',
        'reason', 'slot_lost'));
      v_failed := v_failed || jsonb_build_array(jsonb_build_object('snapshot_id', r.snapshot_id, 'reason', v_reason));
      CONTINUE;
    END IF;
    IF NOT r.slot_exists THEN
      CONTINUE;
    END IF;
    v_reason := CASE WHEN r.wal_status IN ('unreserved', 'lost') THEN format('wal_status is %s', r.wal_status)
                     WHEN r.safe_wal_size < p_warn_bytes
                       THEN format('only %s more WAL may be written before max_slot_wal_keep_size invalidates it (safe_wal_size)',
                                   pg_size_pretty(greatest(r.safe_wal_size, 0)))
                     WHEN r.retained_bytes > p_warn_bytes THEN format('it retains %s of WAL (over %s)', pg_size_pretty(r.retained_bytes),
                                                                      pg_size_pretty(p_warn_bytes)) END;
    IF v_reason IS NULL THEN
      CONTINUE;
    END IF;
    v_warning := jsonb_build_object('snapshot_id', r.snapshot_id, 'state', r.state, 'slot_name', r.slot_name, 'reason', v_reason,
                                    'retained_bytes', r.retained_bytes, 'threshold_bytes', p_warn_bytes, 'wal_status', r.wal_status,
                                    'safe_wal_size', r.safe_wal_size);
    IF r.wal_warned_at IS NULL OR r.wal_warned_at < now() - p_repeat THEN
      UPDATE steep_repl.snapshots SET wal_warned_at = now() WHERE snapshot_id = r.snapshot_id;
      PERFORM steep_repl.emit_event('snapshot.slot_at_risk', r.source_node_id, v_warning || jsonb_build_object(
        'hint', 'apply or delete the snapshot soon: the slot keeps WAL on this server until it expires'));
      v_warning := v_warning || jsonb_build_object('warned', true);
    ELSE
      v_warning := v_warning || jsonb_build_object('warned', false);
    END IF;
    v_at_risk := v_at_risk || jsonb_build_array(v_warning);
  END LOOP;
  RETURN jsonb_build_object('live', (SELECT count(*) FROM steep_repl.snapshots WHERE state IN ('generating', 'ready')),
                            'at_risk', v_at_risk, 'failed', v_failed);
END $$;
