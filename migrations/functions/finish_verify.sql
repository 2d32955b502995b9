-- Ends a verify with its outcome, in one transaction with what follows from
-- it. equal, differs, unsettled: the tables' results are recorded already
-- (record_verify_table); node_divergence loses the tables found equal and
-- gets those found differing (unsettled ones stay as they were), then a
-- synchronized node with divergence left becomes diverged and a diverged
-- one with none left synchronized. A reinit's verify replaces the
-- divergence of every table it compared and lets finish_reinit decide the
-- state. failed takes {error, hint}; failed and cancelled change neither
-- the divergence nor the state. Emits verify.completed, verify.failed or
-- verify.cancelled.
CREATE OR REPLACE FUNCTION steep_repl.finish_verify(p_verify_id bigint, p_outcome text, p_details jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_run steep_repl.verify_runs;
  v_node steep_repl.nodes;
  v_details jsonb := coalesce(p_details, '{}');
  v_summary jsonb;
  v_compared boolean := p_outcome IN ('equal', 'differs', 'unsettled');
BEGIN
  IF p_outcome IS NULL OR p_outcome NOT IN ('equal', 'differs', 'unsettled', 'failed', 'cancelled') THEN
    RAISE EXCEPTION 'unknown verify outcome %', quote_nullable(p_outcome)
      USING ERRCODE = 'SR004', HINT = 'outcomes: equal, differs, unsettled, failed, cancelled';
  END IF;
  SELECT * INTO v_run FROM steep_repl.verify_runs WHERE verify_id = p_verify_id;
  IF NOT FOUND THEN
    PERFORM steep_repl.verify_status(p_verify_id);
  END IF;
  -- the same lock as start_verify and cancel_verify, then the run as it is now
  SELECT * INTO v_node FROM steep_repl.nodes WHERE node_id = v_run.node_id FOR UPDATE;
  SELECT * INTO v_run FROM steep_repl.verify_runs WHERE verify_id = p_verify_id FOR UPDATE;
  IF v_run.state NOT IN ('queued', 'running') THEN
    RAISE EXCEPTION 'verify % has ended already (%)', p_verify_id, v_run.state USING ERRCODE = 'SR003';
  END IF;

  UPDATE steep_repl.verify_runs
     SET state = p_outcome, phase = 'done', finished_at = now(), updated_at = now(),
         percent = CASE WHEN v_compared THEN 100 ELSE percent END,
         tables_done = CASE WHEN v_compared THEN tables_total ELSE tables_done END,
         error = CASE WHEN p_outcome = 'failed' THEN coalesce(v_details ->> 'error', 'the verify failed') END,
         hint = CASE WHEN p_outcome = 'failed' THEN v_details ->> 'hint' END
   WHERE verify_id = p_verify_id
  RETURNING * INTO v_run;

  SELECT jsonb_build_object(
           'tables_total', v_run.tables_total,
           'tables_equal', count(*) FILTER (WHERE t.status = 'equal'),
           'tables_differing', coalesce(jsonb_agg(format('%I.%I', t.schema_name, t.table_name) ORDER BY t.schema_name, t.table_name)
                                          FILTER (WHERE t.status = 'differs'), '[]'),
           'tables_unsettled', coalesce(jsonb_agg(format('%I.%I', t.schema_name, t.table_name) ORDER BY t.schema_name, t.table_name)
                                          FILTER (WHERE t.status = 'unsettled'), '[]'),
           'rows_compared', v_run.rows_compared,
           'rows_missing', coalesce(sum(t.rows_missing), 0),
           'rows_extra', coalesce(sum(t.rows_extra), 0),
           'rows_different', coalesce(sum(t.rows_different), 0),
           'rows_unsettled', coalesce(sum(t.rows_unsettled), 0))
    INTO v_summary
    FROM steep_repl.verify_tables t WHERE t.verify_id = p_verify_id;
  v_summary := jsonb_build_object('verify_id', p_verify_id, 'peer_node', v_run.peer_node_id, 'reason', v_run.reason,
                                  'outcome', p_outcome,
                                  'seconds', round(extract(epoch FROM v_run.finished_at - coalesce(v_run.started_at, v_run.requested_at))::numeric, 3))
               || v_summary;

  IF v_compared AND (v_run.reason = 'reinit' OR v_node.init_state IN ('synchronized', 'diverged')) THEN
    DELETE FROM steep_repl.node_divergence d
     USING steep_repl.verify_tables t
     WHERE d.node_id = v_run.node_id AND t.verify_id = p_verify_id
       AND d.schema_name = t.schema_name AND d.table_name = t.table_name
       AND (t.status = 'equal' OR v_run.reason = 'reinit');
    INSERT INTO steep_repl.node_divergence AS d (node_id, schema_name, table_name, peer_node_id, verify_id, rows_missing, rows_extra, rows_different)
    SELECT v_run.node_id, t.schema_name, t.table_name, v_run.peer_node_id, p_verify_id, t.rows_missing, t.rows_extra, t.rows_different
      FROM steep_repl.verify_tables t WHERE t.verify_id = p_verify_id AND t.status = 'differs'
    ON CONFLICT (node_id, schema_name, table_name) DO UPDATE
      SET peer_node_id = EXCLUDED.peer_node_id, verify_id = EXCLUDED.verify_id, rows_missing = EXCLUDED.rows_missing,
          rows_extra = EXCLUDED.rows_extra, rows_different = EXCLUDED.rows_different, found_at = now();
  END IF;

  IF v_run.reason = 'reinit' THEN
    PERFORM steep_repl.finish_reinit(v_run.node_id, p_outcome, v_details || v_summary);
  ELSIF v_compared AND v_node.init_state = 'synchronized'
        AND EXISTS (SELECT 1 FROM steep_repl.node_divergence WHERE node_id = v_run.node_id) THEN
    PERFORM steep_repl.transition(v_run.node_id, 'diverged', jsonb_build_object(
      'reason', 'a verify found data that differs from node ' || quote_ident(v_run.peer_node_id),
      'verify_id', p_verify_id,
      'tables', (SELECT jsonb_agg(format('%I.%I', schema_name, table_name) ORDER BY schema_name, table_name)
                 FROM steep_repl.node_divergence WHERE node_id = v_run.node_id)));
  ELSIF v_compared AND v_node.init_state = 'diverged'
        AND NOT EXISTS (SELECT 1 FROM steep_repl.node_divergence WHERE node_id = v_run.node_id) THEN
    PERFORM steep_repl.transition(v_run.node_id, 'synchronized', jsonb_build_object(
      'reason', 'a later verify found no difference', 'verify_id', p_verify_id));
  END IF;

  v_summary := v_summary || jsonb_build_object('state', (SELECT init_state FROM steep_repl.nodes WHERE node_id = v_run.node_id));
  IF v_compared THEN
    PERFORM steep_repl.emit_event('verify.completed', v_run.node_id, v_summary);
  ELSIF p_outcome = 'failed' THEN
    PERFORM steep_repl.emit_event('verify.failed', v_run.node_id, v_summary || jsonb_build_object('error', v_run.error, 'hint', v_run.hint));
  ELSE
    PERFORM steep_repl.emit_event('verify.cancelled', v_run.node_id, v_summary || v_details);
  END IF;
  RETURN v_summary;
END $$;
