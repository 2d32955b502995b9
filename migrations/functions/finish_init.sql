-- Ends an init from any in-progress or failed state in the way the outcome
-- asks, with its transition, progress row and event in one transaction.
-- failed takes {error, kind, hint} from the agent; the message it records
-- says what to do next (init_failure_message).
CREATE OR REPLACE FUNCTION steep_repl.finish_init(p_node_id text, p_outcome text, p_details jsonb DEFAULT '{}')
RETURNS steep_repl.nodes LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes := steep_repl.get_node(p_node_id);
  v_details jsonb := coalesce(p_details, '{}');
BEGIN
  CASE p_outcome
  WHEN 'completed' THEN
    v_node := steep_repl.transition(p_node_id, 'synchronized', jsonb_build_object('reason', 'caught up with the source'));
    UPDATE steep_repl.init_progress
       SET phase = 'done', overall_percent = 100, tables_done = tables_total, eta_seconds = 0,
           workers_active = 0, error = NULL, failure_kind = NULL, updated_at = now()
     WHERE node_id = p_node_id;
    PERFORM steep_repl.emit_event('init.completed', p_node_id, v_details || jsonb_build_object(
      'source_node', v_node.init_source_node,
      'seconds', round(extract(epoch FROM now() - v_node.init_started_at)::numeric, 3),
      -- what the schema step let the init go ahead without (auto, manual)
      'not_replicated', (SELECT p.not_replicated FROM steep_repl.init_progress p WHERE p.node_id = p_node_id)));
  WHEN 'failed' THEN
    v_details := v_details || jsonb_build_object('error', steep_repl.init_failure_message(p_node_id, v_details));
    v_node := steep_repl.transition(p_node_id, 'failed', jsonb_build_object('reason', v_details ->> 'error'));
    UPDATE steep_repl.init_progress
       SET phase = 'failed', error = v_details ->> 'error', failure_kind = coalesce(v_details ->> 'kind', 'error'),
           workers_active = 0, rows_per_second = NULL, bytes_per_second = NULL, eta_seconds = NULL, updated_at = now()
     WHERE node_id = p_node_id;
    PERFORM steep_repl.emit_event('init.failed', p_node_id, v_details);
  WHEN 'cancelled' THEN
    IF v_node.init_state <> 'uninitialized' THEN
      v_node := steep_repl.transition(p_node_id, 'uninitialized', jsonb_build_object('reason', 'init cancelled'));
    END IF;
    UPDATE steep_repl.nodes SET init_source_node = NULL WHERE node_id = p_node_id RETURNING * INTO v_node;
    DELETE FROM steep_repl.init_table_progress WHERE node_id = p_node_id;
    DELETE FROM steep_repl.init_progress WHERE node_id = p_node_id;
    PERFORM steep_repl.emit_event('init.cancelled', p_node_id, v_details);
  ELSE
    RAISE EXCEPTION 'unknown init outcome %', quote_nullable(p_outcome)
      USING ERRCODE = 'SR004', HINT = 'outcomes: completed, failed, cancelled';
  END CASE;
  RETURN v_node;
END $$;
