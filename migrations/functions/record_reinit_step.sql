-- The reinit job's way through its steps (init_progress.reinit.step), so a
-- resumed job knows where it was and a cancel whether anything changed.
-- Tables and schema: queued, removing (the point of no return, recorded
-- before the tables leave the publication: refused once a cancel was asked,
-- and the job then ends the reinit unchanged), removed, emptied, added,
-- copied, verifying. Full: queued, detached (the pair's replication removed,
-- and what the last init recorded about it with it), verifying. p_facts go
-- into the reinit too (the source's position, the verify's id). Returns the
-- reinit with cancel_requested.
CREATE OR REPLACE FUNCTION steep_repl.record_reinit_step(p_node text, p_step text, p_facts jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes;
  v_progress steep_repl.init_progress;
  v_old text;
  v_reinit jsonb;
  v_event text;
BEGIN
  SELECT * INTO v_node FROM steep_repl.nodes WHERE node_id = p_node FOR UPDATE;
  SELECT * INTO v_progress FROM steep_repl.init_progress WHERE node_id = p_node;
  IF v_progress.reinit IS NULL OR v_node.init_state IS DISTINCT FROM 'reinitializing' THEN
    RAISE EXCEPTION 'node % has no reinit in progress (it is %)', quote_ident(p_node), coalesce(v_node.init_state, 'not registered')
      USING ERRCODE = 'SR003';
  END IF;
  IF p_step NOT IN ('queued', 'removing', 'removed', 'emptied', 'added', 'copied', 'detached', 'verifying') THEN
    RAISE EXCEPTION 'unknown reinit step %', quote_nullable(p_step) USING ERRCODE = 'SR004';
  END IF;
  v_old := v_progress.reinit ->> 'step';
  IF p_step = 'removing' AND v_progress.cancel_requested_at IS NOT NULL AND NOT coalesce((v_progress.reinit ->> 'changed')::boolean, false) THEN
    RETURN v_progress.reinit || jsonb_build_object('cancel_requested', true);
  END IF;
  v_reinit := v_progress.reinit || coalesce(p_facts, '{}') || jsonb_build_object('step', p_step)
              || CASE WHEN p_step IN ('removing', 'detached') THEN jsonb_build_object('changed', true) ELSE '{}' END;
  UPDATE steep_repl.init_progress SET reinit = v_reinit, updated_at = now() WHERE node_id = p_node;

  IF p_step = 'detached' AND v_old IS DISTINCT FROM 'detached' THEN
    -- the subscription, slot and publication it knew of are gone
    DELETE FROM steep_repl.init_method_state WHERE node_id = p_node;
    INSERT INTO steep_repl.init_method_state (node_id, replication_name, slot_name)
    VALUES (p_node, steep_repl.replication_name(v_node.init_source_node, p_node), steep_repl.replication_name(v_node.init_source_node, p_node));
  END IF;
  v_event := CASE p_step WHEN 'removed' THEN 'reinit.tables_removed' WHEN 'emptied' THEN 'reinit.tables_emptied'
                         WHEN 'added' THEN 'reinit.copy_started' END;
  IF v_event IS NOT NULL AND v_old IS DISTINCT FROM p_step THEN
    PERFORM steep_repl.emit_event(v_event, p_node, jsonb_strip_nulls(coalesce(p_facts, '{}')) || jsonb_build_object(
      'source_node', v_node.init_source_node, 'scope', v_reinit ->> 'scope',
      'tables', steep_repl.reinit_labels(v_reinit)));
  END IF;
  RETURN v_reinit || jsonb_build_object('cancel_requested', v_progress.cancel_requested_at IS NOT NULL);
END $$;
