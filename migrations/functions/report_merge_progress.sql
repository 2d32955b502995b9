-- What the merge job measured, as it goes: any of phase, step, percent,
-- tables_done, the row counts, the merge points (lsn_a, lsn_b) and error
-- (null clears it); fields left out stay. The run announces itself
-- (announce_merge_progress). A report that arrives after the end changes
-- nothing.
CREATE OR REPLACE FUNCTION steep_repl.report_merge_progress(p_merge_id bigint, p jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_known text[] := ARRAY['phase', 'step', 'percent', 'tables_done', 'rows_identical', 'rows_only_a', 'rows_only_b',
                          'rows_conflicting', 'rows_to_a', 'rows_to_b', 'lsn_a', 'lsn_b', 'error'];
  v_report jsonb := coalesce(p, '{}');
  v_run steep_repl.merge_runs;
  v_new steep_repl.merge_runs;
  v_bad text;
  v_past text[] := ARRAY['exchanged', 'subscribed', 'verifying', 'verified'];
BEGIN
  IF jsonb_typeof(v_report) <> 'object' THEN
    RAISE EXCEPTION 'a merge progress report is a JSON object, got %', v_report USING ERRCODE = 'SR004';
  END IF;
  SELECT string_agg(quote_literal(k), ', ' ORDER BY k) INTO v_bad FROM jsonb_object_keys(v_report) k WHERE NOT k = ANY (v_known);
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION 'unknown merge progress field %', v_bad USING ERRCODE = 'SR004', HINT = 'fields: ' || array_to_string(v_known, ', ');
  END IF;
  v_run := steep_repl.get_merge(p_merge_id);
  IF v_run.state NOT IN ('queued', 'running') THEN
    RETURN;
  END IF;
  IF v_report ? 'percent' THEN
    v_report := v_report || jsonb_build_object('percent', least(100, greatest(0, (v_report ->> 'percent')::numeric)));
  END IF;
  v_new := jsonb_populate_record(v_run, v_report);
  UPDATE steep_repl.merge_runs
     SET phase = v_new.phase,
         -- a late report from before the exchange's commit keeps the step past it
         step = CASE WHEN step = ANY (v_past) AND NOT coalesce(v_new.step, step) = ANY (v_past) THEN step ELSE coalesce(v_new.step, step) END,
         percent = coalesce(v_new.percent, percent),
         tables_done = coalesce(v_new.tables_done, tables_done),
         rows_identical = coalesce(v_new.rows_identical, rows_identical), rows_only_a = coalesce(v_new.rows_only_a, rows_only_a),
         rows_only_b = coalesce(v_new.rows_only_b, rows_only_b), rows_conflicting = coalesce(v_new.rows_conflicting, rows_conflicting),
         rows_to_a = coalesce(v_new.rows_to_a, rows_to_a), rows_to_b = coalesce(v_new.rows_to_b, rows_to_b),
         lsn_a = v_new.lsn_a, lsn_b = v_new.lsn_b, error = v_new.error, updated_at = now()
   WHERE merge_id = p_merge_id AND state IN ('queued', 'running');
END $$;
