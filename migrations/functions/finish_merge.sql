-- Ends a merge run with its outcome: analyzed (analyze, dry_run), resolving
-- (record: the conflicts wait for the DBA), merged or differs (merge: how
-- the final verify ended), failed ({error, hint, kind}) or cancelled
-- ({exchanged}). The run's totals become the sums of its tables once any
-- was compared. The nodes' states are merge_node_finish's, on each node.
-- Emits merge.completed, merge.failed or merge.cancelled; returns
-- merge_status.
CREATE OR REPLACE FUNCTION steep_repl.finish_merge(p_merge_id bigint, p_outcome text, p_details jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_run steep_repl.merge_runs;
  v_details jsonb := coalesce(p_details, '{}');
  v_done boolean := p_outcome IN ('analyzed', 'resolving', 'merged', 'differs');
  v_kind text;
  v_event jsonb;
  v_sums record;
BEGIN
  IF p_outcome IS NULL OR p_outcome NOT IN ('analyzed', 'resolving', 'merged', 'differs', 'failed', 'cancelled') THEN
    RAISE EXCEPTION 'unknown merge outcome %', quote_nullable(p_outcome)
      USING ERRCODE = 'SR004', HINT = 'outcomes: analyzed, resolving, merged, differs, failed, cancelled';
  END IF;
  v_run := steep_repl.get_merge(p_merge_id);
  -- the same lock as start_merge and cancel_merge, then the run as it is now
  PERFORM 1 FROM steep_repl.nodes WHERE node_id = v_run.node_a FOR UPDATE;
  SELECT * INTO v_run FROM steep_repl.merge_runs WHERE merge_id = p_merge_id FOR UPDATE;
  IF v_run.state NOT IN ('queued', 'running') THEN
    RAISE EXCEPTION 'merge % has ended already (%)', p_merge_id, v_run.state USING ERRCODE = 'SR003';
  END IF;
  IF v_done AND p_outcome <> (CASE v_run.mode WHEN 'record' THEN 'resolving' WHEN 'merge' THEN p_outcome ELSE 'analyzed' END)
     OR v_run.mode = 'merge' AND p_outcome IN ('analyzed', 'resolving') THEN
    RAISE EXCEPTION 'a % run does not end %', v_run.mode, p_outcome
      USING ERRCODE = 'SR004',
            HINT = CASE v_run.mode WHEN 'merge' THEN 'a merge ends merged or differs' WHEN 'record' THEN 'a record ends resolving'
                                   ELSE 'an analysis or dry run ends analyzed' END || ' (or failed, cancelled)';
  END IF;
  IF p_outcome = 'failed' THEN
    v_kind := coalesce(v_details ->> 'kind', 'error');
    IF v_kind NOT IN ('refused', 'schema', 'concurrent', 'quiesce', 'timeout', 'connection', 'error') THEN
      RAISE EXCEPTION 'unknown merge failure kind %', quote_literal(v_kind)
        USING ERRCODE = 'SR004', HINT = 'kinds: refused, schema, concurrent, quiesce, timeout, connection, error';
    END IF;
  END IF;

  -- NULL while no table was compared: the job's reported totals stay
  SELECT sum(rows_identical) AS rows_identical, sum(rows_only_a) AS rows_only_a, sum(rows_only_b) AS rows_only_b,
         sum(rows_conflicting) AS rows_conflicting, sum(rows_to_a) AS rows_to_a, sum(rows_to_b) AS rows_to_b
    INTO v_sums
    FROM steep_repl.merge_tables WHERE merge_id = p_merge_id
  HAVING bool_or(status <> 'pending');
  UPDATE steep_repl.merge_runs r
     SET state = p_outcome, phase = 'done', finished_at = now(), updated_at = now(),
         percent = CASE WHEN v_done THEN 100 ELSE percent END,
         tables_done = CASE WHEN v_done THEN tables_total ELSE tables_done END,
         error = CASE WHEN p_outcome = 'failed' THEN coalesce(v_details ->> 'error', 'the merge failed') END,
         hint = CASE WHEN p_outcome = 'failed' THEN v_details ->> 'hint' END,
         failure_kind = v_kind,
         rows_identical = coalesce(v_sums.rows_identical, r.rows_identical), rows_only_a = coalesce(v_sums.rows_only_a, r.rows_only_a),
         rows_only_b = coalesce(v_sums.rows_only_b, r.rows_only_b), rows_conflicting = coalesce(v_sums.rows_conflicting, r.rows_conflicting),
         rows_to_a = coalesce(v_sums.rows_to_a, r.rows_to_a), rows_to_b = coalesce(v_sums.rows_to_b, r.rows_to_b)
   WHERE r.merge_id = p_merge_id
  RETURNING r.* INTO v_run;

  v_event := jsonb_build_object('merge_id', p_merge_id, 'node_a', v_run.node_a, 'node_b', v_run.node_b, 'mode', v_run.mode,
                                'strategy', v_run.strategy, 'outcome', p_outcome,
                                'seconds', round(extract(epoch FROM v_run.finished_at - coalesce(v_run.started_at, v_run.requested_at))::numeric, 3));
  IF v_done THEN
    PERFORM steep_repl.emit_event('merge.completed', v_run.node_a, v_event || jsonb_build_object('totals', jsonb_build_object(
      'tables_total', v_run.tables_total, 'rows_identical', v_run.rows_identical, 'rows_only_a', v_run.rows_only_a,
      'rows_only_b', v_run.rows_only_b, 'rows_conflicting', v_run.rows_conflicting, 'rows_to_a', v_run.rows_to_a, 'rows_to_b', v_run.rows_to_b,
      'conflicts_recorded', (SELECT count(*) FROM steep_repl.merge_conflicts WHERE merge_id = p_merge_id),
      'tables_differing', (SELECT coalesce(jsonb_agg(format('%I.%I', schema_name, table_name) ORDER BY schema_name, table_name), '[]')
                           FROM steep_repl.merge_tables WHERE merge_id = p_merge_id AND status = 'differs'))));
  ELSIF p_outcome = 'failed' THEN
    PERFORM steep_repl.emit_event('merge.failed', v_run.node_a, v_event || jsonb_build_object(
      'error', v_run.error, 'hint', v_run.hint, 'kind', v_kind, 'step', v_run.step));
  ELSE
    PERFORM steep_repl.emit_event('merge.cancelled', v_run.node_a, v_event || (v_details - 'exchanged') || jsonb_build_object(
      'exchanged', coalesce((v_details ->> 'exchanged')::boolean, false), 'step', v_run.step));
  END IF;
  RETURN steep_repl.merge_status(p_merge_id);
END $$;
