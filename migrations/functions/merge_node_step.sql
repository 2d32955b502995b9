-- Where a node's merge is, on the node's own database: merge.step (the
-- exchange writes 'exchanged' inside its own transaction, so a resumed job
-- knows whether it committed; a step from before it, a late progress
-- report, does not overwrite it), merge.error from p_progress.error (null
-- clears it), a move forward to copying or catching_up (never back: a
-- resumed job compares again from a node that is past that), and
-- init_progress fields from p_progress. A cancel asked keeps the phase
-- 'cancelling'. Returns the merge with the node's state and cancel request.
CREATE OR REPLACE FUNCTION steep_repl.merge_node_step(p_node text, p_merge_id bigint, p_step text, p_state text DEFAULT NULL,
                                                      p_progress jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_known text[] := ARRAY['phase', 'overall_percent', 'tables_done', 'tables_total', 'current_table', 'rows_copied', 'rows_total',
                          'rows_per_second', 'eta_seconds', 'error'];
  v_report jsonb := coalesce(p_progress, '{}');
  v_progress steep_repl.init_progress;
  v_new steep_repl.init_progress;
  v_state text;
  v_bad text;
  v_order text[] := ARRAY['preparing', 'copying', 'catching_up'];
  -- the steps past the exchange's commit, which a resumed job reads back
  v_past text[] := ARRAY['exchanged', 'subscribed', 'verifying', 'verified'];
BEGIN
  PERFORM steep_repl.require_local_node('merge_node_step', p_node, 'node merge');
  IF jsonb_typeof(v_report) <> 'object' THEN
    RAISE EXCEPTION 'merge progress is a JSON object, got %', v_report USING ERRCODE = 'SR004';
  END IF;
  SELECT string_agg(quote_literal(k), ', ' ORDER BY k) INTO v_bad FROM jsonb_object_keys(v_report) k WHERE NOT k = ANY (v_known);
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION 'unknown merge progress field %', v_bad USING ERRCODE = 'SR004', HINT = 'fields: ' || array_to_string(v_known, ', ');
  END IF;
  IF p_step IS NULL OR btrim(p_step) = '' OR length(p_step) > 63 THEN
    RAISE EXCEPTION 'a merge step is a name, got %', quote_nullable(p_step) USING ERRCODE = 'SR004';
  END IF;
  IF p_state IS NOT NULL AND p_state NOT IN ('copying', 'catching_up') THEN
    RAISE EXCEPTION 'a merge step moves a node to copying or catching_up, not %', quote_literal(p_state) USING ERRCODE = 'SR004';
  END IF;
  IF v_report ? 'phase' AND v_report ->> 'phase' NOT IN ('preparing', 'copying', 'catching_up', 'verifying') THEN
    RAISE EXCEPTION 'a merge''s phase on a node is preparing, copying, catching_up or verifying, not %', v_report -> 'phase'
      USING ERRCODE = 'SR004';
  END IF;

  SELECT * INTO v_progress FROM steep_repl.init_progress WHERE node_id = p_node FOR UPDATE;
  IF (v_progress.merge ->> 'merge_id')::bigint IS DISTINCT FROM p_merge_id THEN
    RAISE EXCEPTION '%', format('node %s is not in merge %s%s', quote_ident(p_node), p_merge_id,
                                coalesce(format(' (it is in merge %s)', v_progress.merge ->> 'merge_id'), ''))
      USING ERRCODE = 'SR004';
  END IF;
  IF v_progress.merge ->> 'outcome' IS NOT NULL THEN
    RAISE EXCEPTION 'merge % has ended on node % (%)', p_merge_id, quote_ident(p_node), v_progress.merge ->> 'outcome' USING ERRCODE = 'SR003';
  END IF;

  v_state := (SELECT init_state FROM steep_repl.nodes WHERE node_id = p_node);
  IF p_state IS NOT NULL AND array_position(v_order, v_state) < array_position(v_order, p_state) THEN
    PERFORM steep_repl.transition(p_node, p_state, jsonb_build_object(
      'reason', CASE p_state WHEN 'copying' THEN 'merge: comparing with ' ELSE 'merge: exchanged; replicating with ' END
                || (v_progress.merge ->> 'peer_node_id'),
      'merge_id', p_merge_id, 'step', p_step));
    v_state := p_state;
    IF NOT v_report ? 'phase' THEN
      v_report := v_report || jsonb_build_object('phase', p_state);
    END IF;
  END IF;

  v_new := jsonb_populate_record(v_progress, v_report - 'error');
  UPDATE steep_repl.init_progress
     SET phase = CASE WHEN cancel_requested_at IS NOT NULL THEN 'cancelling' ELSE v_new.phase END,
         overall_percent = least(100, greatest(0, coalesce(v_new.overall_percent, overall_percent))),
         tables_total = coalesce(v_new.tables_total, tables_total),
         tables_done = least(coalesce(v_new.tables_done, tables_done), coalesce(v_new.tables_total, tables_total)),
         current_table = v_new.current_table, rows_copied = coalesce(v_new.rows_copied, rows_copied), rows_total = v_new.rows_total,
         rows_per_second = v_new.rows_per_second, eta_seconds = v_new.eta_seconds,
         error = CASE WHEN v_report ? 'error' THEN v_report ->> 'error' ELSE error END,
         merge = merge || jsonb_build_object('step', CASE WHEN merge ->> 'step' = ANY (v_past) AND NOT p_step = ANY (v_past)
                                                          THEN merge ->> 'step' ELSE p_step END)
                 || CASE WHEN v_report ? 'error' THEN jsonb_build_object('error', left(v_report ->> 'error', 2000)) ELSE '{}' END,
         updated_at = now()
   WHERE node_id = p_node
  RETURNING * INTO v_new;
  RETURN v_new.merge || jsonb_build_object('node_state', v_state, 'cancel_requested_at', v_new.cancel_requested_at);
END $$;
