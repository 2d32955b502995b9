-- What the verify job measured, as it goes: the run's phase, percent and
-- counts, and any of its tables' (status, compared, note, estimate and
-- ranges; fields left out stay). Tables first, so the run's announcement
-- (announce_verify_progress) names the table being compared. Returns
-- whether a cancel was asked from SQL, as a second way for the job to see it.
CREATE OR REPLACE FUNCTION steep_repl.report_verify_progress(p_verify_id bigint, p_run jsonb DEFAULT '{}', p_tables jsonb DEFAULT '[]')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_run steep_repl.verify_runs;
BEGIN
  SELECT * INTO v_run FROM steep_repl.verify_runs WHERE verify_id = p_verify_id;
  IF NOT FOUND THEN
    PERFORM steep_repl.verify_status(p_verify_id);
  END IF;
  -- a report that arrives after the end changes nothing
  IF v_run.state NOT IN ('queued', 'running') THEN
    RETURN jsonb_build_object('state', v_run.state, 'cancel_requested_at', v_run.cancel_requested_at);
  END IF;
  UPDATE steep_repl.verify_tables t
     SET status = coalesce(r ->> 'status', t.status),
         compared = coalesce(r ->> 'compared', t.compared),
         note = coalesce(r ->> 'note', t.note),
         rows_estimate = coalesce((r ->> 'rows_estimate')::bigint, t.rows_estimate),
         ranges_total = coalesce((r ->> 'ranges_total')::int, t.ranges_total),
         ranges_done = coalesce((r ->> 'ranges_done')::int, t.ranges_done),
         ranges_differing = coalesce((r ->> 'ranges_differing')::int, t.ranges_differing),
         rows_compared = coalesce((r ->> 'rows_compared')::bigint, t.rows_compared),
         started_at = CASE WHEN t.started_at IS NULL AND coalesce(r ->> 'status', t.status) <> 'pending' THEN now() ELSE t.started_at END
    FROM jsonb_array_elements(coalesce(p_tables, '[]')) r
   WHERE t.verify_id = p_verify_id AND t.schema_name = r ->> 'schema_name' AND t.table_name = r ->> 'table_name';
  UPDATE steep_repl.verify_runs
     SET phase = coalesce(p_run ->> 'phase', phase),
         percent = least(100, greatest(0, coalesce((p_run ->> 'percent')::numeric, percent))),
         tables_done = coalesce((p_run ->> 'tables_done')::int, tables_done),
         rows_compared = coalesce((p_run ->> 'rows_compared')::bigint, rows_compared),
         peer_lsn = coalesce((p_run ->> 'peer_lsn')::pg_lsn, peer_lsn),
         updated_at = now()
   WHERE verify_id = p_verify_id AND state IN ('queued', 'running')
  RETURNING * INTO v_run;
  RETURN jsonb_build_object('state', v_run.state, 'cancel_requested_at', v_run.cancel_requested_at);
END $$;
