-- Ends a reinit, with its transition, progress row and event in one
-- transaction. Outcomes:
--   unchanged  the reinit ended before its point of no return (cancelled,
--              or failed: details {reason: cancelled|failed, error, hint});
--              nothing changed, the node is back in its previous state
--   recopied   cancelled after it: the tables were fully re-copied, the
--              verify skipped (docs/verify.md, Cancel)
--   equal | differs | unsettled | failed | cancelled
--              the verify of the re-copied tables ended so (finish_verify
--              calls this with its own outcome and {verify_id, ...})
-- Once re-copied, the divergence a verify found earlier in those tables is
-- gone (what this reinit's own verify found stays) and the node is diverged
-- if any table still differs, else synchronized. The reinit stays in
-- init_progress with its outcome, so clients can say how it ended.
CREATE OR REPLACE FUNCTION steep_repl.finish_reinit(p_node text, p_outcome text, p_details jsonb DEFAULT '{}')
RETURNS steep_repl.nodes LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes;
  v_progress steep_repl.init_progress;
  v_reinit jsonb;
  v_details jsonb := coalesce(p_details, '{}');
  v_verify_id bigint := (coalesce(p_details, '{}') ->> 'verify_id')::bigint;
  v_to text;
  v_reason text;
BEGIN
  SELECT * INTO v_node FROM steep_repl.nodes WHERE node_id = p_node FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM steep_repl.unknown_node(p_node);
  END IF;
  SELECT * INTO v_progress FROM steep_repl.init_progress WHERE node_id = p_node FOR UPDATE;
  v_reinit := v_progress.reinit;
  IF v_reinit IS NULL OR v_node.init_state <> 'reinitializing' THEN
    RAISE EXCEPTION 'node % has no reinit in progress (it is %)', quote_ident(p_node), v_node.init_state USING ERRCODE = 'SR003';
  END IF;
  IF p_outcome IS NULL OR p_outcome NOT IN ('unchanged', 'recopied', 'equal', 'differs', 'unsettled', 'failed', 'cancelled') THEN
    RAISE EXCEPTION 'unknown reinit outcome %', quote_nullable(p_outcome)
      USING ERRCODE = 'SR004', HINT = 'outcomes: unchanged, recopied, equal, differs, unsettled, failed, cancelled';
  END IF;

  IF p_outcome = 'unchanged' THEN
    v_to := v_reinit ->> 'previous_state';
    v_reason := CASE WHEN v_details ->> 'reason' = 'failed' THEN 'reinit failed before it changed anything: ' || coalesce(v_details ->> 'error', 'no reason given')
                     ELSE 'reinit cancelled before it changed anything' END;
    -- the tables it listed were never touched
    DELETE FROM steep_repl.init_table_progress WHERE node_id = p_node AND state = 'pending';
  ELSE
    -- what an earlier verify found in the re-copied tables is about rows that are gone
    DELETE FROM steep_repl.node_divergence d
     WHERE d.node_id = p_node AND d.verify_id IS DISTINCT FROM v_verify_id
       AND (v_reinit ->> 'scope' = 'full'
            OR EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(v_reinit -> 'tables') = 'array' THEN v_reinit -> 'tables' ELSE '[]' END) t
                        WHERE t ->> 'schema_name' = d.schema_name AND t ->> 'table_name' = d.table_name));
    v_to := CASE WHEN EXISTS (SELECT 1 FROM steep_repl.node_divergence d WHERE d.node_id = p_node) THEN 'diverged' ELSE 'synchronized' END;
    v_reason := CASE p_outcome
      WHEN 'recopied' THEN 'reinit cancelled after the tables left the publication: fully re-copied, not verified'
      WHEN 'equal' THEN 're-copied and verified equal'
      WHEN 'differs' THEN 're-copied, but the verify found differences'
      WHEN 'unsettled' THEN 're-copied; the verify could not settle every difference (rows kept changing on the source)'
      WHEN 'failed' THEN 're-copied; the verify failed: ' || coalesce(v_details ->> 'error', 'no reason given')
      ELSE 're-copied; the verify was cancelled' END;
    IF v_to = 'diverged' AND p_outcome <> 'differs' THEN
      v_reason := v_reason || '; other tables still differ';
    END IF;
  END IF;

  -- how it ended, for clients that read the row: reason cancelled, failed
  -- (with the error) or verify (its verify decided)
  v_reinit := v_reinit || jsonb_build_object('outcome', p_outcome, 'finished_at', now(), 'state', v_to,
                                             'reason', CASE WHEN p_outcome = 'unchanged' THEN coalesce(v_details ->> 'reason', 'cancelled')
                                                            WHEN p_outcome = 'recopied' THEN 'cancelled' ELSE 'verify' END,
                                             'error', v_details ->> 'error', 'error_hint', v_details ->> 'hint')
              || CASE WHEN v_verify_id IS NOT NULL THEN jsonb_build_object('verify_id', v_verify_id) ELSE '{}' END;
  v_node := steep_repl.transition(p_node, v_to, jsonb_build_object('reason', v_reason, 'outcome', p_outcome, 'verify_id', v_verify_id));
  UPDATE steep_repl.init_progress
     SET phase = 'done', overall_percent = CASE WHEN p_outcome = 'unchanged' THEN overall_percent ELSE 100 END,
         tables_done = CASE WHEN p_outcome = 'unchanged' THEN tables_done ELSE tables_total END,
         current_table = NULL, current_table_percent = NULL, eta_seconds = 0, workers_active = 0, lag_bytes = NULL,
         error = NULL, failure_kind = NULL, reinit = v_reinit, updated_at = now()
   WHERE node_id = p_node;

  PERFORM steep_repl.emit_event(
    CASE WHEN p_outcome = 'unchanged' AND v_details ->> 'reason' = 'failed' THEN 'reinit.failed'
         WHEN p_outcome IN ('unchanged', 'recopied') THEN 'reinit.cancelled'
         ELSE 'reinit.completed' END,
    p_node,
    v_details || jsonb_build_object(
      'outcome', p_outcome, 'state', v_to, 'previous_state', v_reinit ->> 'previous_state',
      'changed', p_outcome <> 'unchanged', 'verified', p_outcome IN ('equal', 'differs', 'unsettled'),
      'scope', v_reinit ->> 'scope', 'schema', v_reinit -> 'schema', 'tables', steep_repl.reinit_labels(v_reinit),
      'source_node', v_node.init_source_node, 'verify_id', v_verify_id,
      'seconds', round(extract(epoch FROM now() - v_progress.started_at)::numeric, 3)));
  RETURN v_node;
END $$;
