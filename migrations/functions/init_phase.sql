-- Moves an init to its next phase: phase_completed for the one it leaves,
-- phase_started for the new one. A repeated call (a resumed job) is a no-op.
CREATE OR REPLACE FUNCTION steep_repl.init_phase(p_node_id text, p_phase text, p_details jsonb DEFAULT '{}')
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_old text;
  v_phases text[];
BEGIN
  SELECT phase INTO v_old FROM steep_repl.init_progress WHERE node_id = p_node_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'node % has no initialization in progress', quote_ident(p_node_id) USING ERRCODE = 'SR003';
  END IF;
  IF v_old = p_phase THEN
    RETURN;
  END IF;
  SELECT steep_repl.reinit_phases(p.reinit, m.phases) INTO v_phases FROM steep_repl.init_progress p JOIN steep_repl.init_methods m USING (method)
   WHERE p.node_id = p_node_id;
  IF NOT (p_phase IN ('done', 'failed', 'cancelling') OR p_phase = ANY (v_phases)) THEN
    RAISE EXCEPTION 'phase % is not a phase of this initialization''s method or reinit', quote_nullable(p_phase)
      USING ERRCODE = 'SR004', HINT = 'phases: ' || array_to_string(v_phases, ', ');
  END IF;
  UPDATE steep_repl.init_progress SET phase = p_phase, updated_at = now() WHERE node_id = p_node_id;
  PERFORM steep_repl.emit_event('init.phase_completed', p_node_id, jsonb_build_object('phase', v_old));
  PERFORM steep_repl.emit_event('init.phase_started', p_node_id, coalesce(p_details, '{}') || jsonb_build_object('phase', p_phase));
END $$;
