-- Ends a node's share of a merge, on the node's own database, with the
-- transition, progress row and event in one transaction:
--   synchronized  the final verify found both nodes equal (from catching_up)
--   diverged      it found differences: details.divergence [{schema_name,
--                 table_name, rows_missing, rows_extra, rows_different}]
--                 become this node's node_divergence (peer: the other node)
--   failed        details {error, hint, kind}; the row stays for the DBA
--   cancelled     back to uninitialized, its progress rows gone
--   unchanged     the same, for a merge that ended before it changed
--                 anything on this node (the event says so)
-- Where the row stays, merge.outcome and merge.finished_at say how it
-- ended. The same outcome again (a resumed job) changes nothing, and so
-- does cancelled or unchanged for a node that is in no merge any more.
-- Emits merge.node_finished {merge_id, outcome, peer_node}.
CREATE OR REPLACE FUNCTION steep_repl.merge_node_finish(p_node text, p_merge_id bigint, p_outcome text, p_details jsonb DEFAULT '{}')
RETURNS steep_repl.nodes LANGUAGE plpgsql AS $$
DECLARE
  v_details jsonb := coalesce(p_details, '{}');
  v_node steep_repl.nodes;
  v_progress steep_repl.init_progress;
  v_merge jsonb;
  v_peer text;
  v_error text;
  v_reason text;
BEGIN
  PERFORM steep_repl.require_local_node('merge_node_finish', p_node, 'node merge');
  IF p_outcome IS NULL OR p_outcome NOT IN ('synchronized', 'diverged', 'failed', 'cancelled', 'unchanged') THEN
    RAISE EXCEPTION 'unknown merge outcome on a node %', quote_nullable(p_outcome)
      USING ERRCODE = 'SR004', HINT = 'outcomes: synchronized, diverged, failed, cancelled, unchanged';
  END IF;
  IF p_outcome = 'diverged' AND (jsonb_typeof(v_details -> 'divergence') IS DISTINCT FROM 'array'
     OR EXISTS (SELECT 1 FROM jsonb_array_elements(v_details -> 'divergence') d
                 WHERE jsonb_typeof(d) <> 'object' OR d ->> 'schema_name' IS NULL OR d ->> 'table_name' IS NULL)) THEN
    RAISE EXCEPTION 'a diverged merge names what differs: divergence [{schema_name, table_name, rows_missing, rows_extra, rows_different}]'
      USING ERRCODE = 'SR004';
  END IF;

  SELECT * INTO v_node FROM steep_repl.nodes WHERE node_id = p_node FOR UPDATE;
  SELECT * INTO v_progress FROM steep_repl.init_progress WHERE node_id = p_node FOR UPDATE;
  v_merge := v_progress.merge;
  IF v_merge IS NULL AND p_outcome IN ('cancelled', 'unchanged') THEN
    RETURN v_node;
  END IF;
  IF (v_merge ->> 'merge_id')::bigint IS DISTINCT FROM p_merge_id THEN
    RAISE EXCEPTION '%', format('node %s is not in merge %s%s', quote_ident(p_node), p_merge_id,
                                coalesce(format(' (it is in merge %s)', v_merge ->> 'merge_id'), ''))
      USING ERRCODE = 'SR004';
  END IF;
  IF v_merge ->> 'outcome' = p_outcome THEN
    RETURN v_node;
  END IF;
  -- once failed, only the cleanup of a cancel may follow
  IF v_merge ->> 'outcome' IS NOT NULL AND NOT (v_merge ->> 'outcome' = 'failed' AND p_outcome IN ('cancelled', 'unchanged')) THEN
    RAISE EXCEPTION 'merge % has ended on node % (%)', p_merge_id, quote_ident(p_node), v_merge ->> 'outcome' USING ERRCODE = 'SR003';
  END IF;
  v_peer := v_merge ->> 'peer_node_id';

  CASE p_outcome
  WHEN 'synchronized', 'diverged' THEN
    v_node := steep_repl.transition(p_node, p_outcome, jsonb_build_object(
      'reason', CASE p_outcome WHEN 'synchronized' THEN 'merged with ' || v_peer || ': both nodes hold the same rows'
                               ELSE 'merged with ' || v_peer || ', but the final verify found rows that differ' END,
      'merge_id', p_merge_id));
    -- what this merge's verify found replaces what this node had
    DELETE FROM steep_repl.node_divergence WHERE node_id = p_node;
    INSERT INTO steep_repl.node_divergence (node_id, schema_name, table_name, peer_node_id, verify_id, rows_missing, rows_extra, rows_different)
    SELECT p_node, d ->> 'schema_name', d ->> 'table_name', v_peer, NULL, coalesce((d ->> 'rows_missing')::bigint, 0),
           coalesce((d ->> 'rows_extra')::bigint, 0), coalesce((d ->> 'rows_different')::bigint, 0)
      FROM jsonb_array_elements(CASE WHEN p_outcome = 'diverged' THEN v_details -> 'divergence' ELSE '[]' END) d
    ON CONFLICT (node_id, schema_name, table_name) DO UPDATE
      SET rows_missing = EXCLUDED.rows_missing, rows_extra = EXCLUDED.rows_extra, rows_different = EXCLUDED.rows_different;
    UPDATE steep_repl.init_progress
       SET phase = 'done', overall_percent = 100, tables_done = tables_total, current_table = NULL, current_table_percent = NULL,
           eta_seconds = 0, rows_per_second = NULL, error = NULL, failure_kind = NULL,
           merge = merge || jsonb_build_object('outcome', p_outcome, 'finished_at', now(), 'error', NULL),
           updated_at = now()
     WHERE node_id = p_node;
  WHEN 'failed' THEN
    v_error := coalesce(v_details ->> 'error', 'the merge failed') || coalesce('; ' || (v_details ->> 'hint'), '');
    v_node := steep_repl.transition(p_node, 'failed', jsonb_build_object('reason', v_error, 'merge_id', p_merge_id));
    UPDATE steep_repl.init_progress
       SET phase = 'failed', error = v_error,
           failure_kind = CASE v_details ->> 'kind' WHEN 'schema' THEN 'schema_mismatch' WHEN 'timeout' THEN 'timeout'
                                                    WHEN 'connection' THEN 'connection' ELSE 'error' END,
           rows_per_second = NULL, eta_seconds = NULL,
           merge = merge || jsonb_build_object('outcome', 'failed', 'finished_at', now(),
                                               'error', left(coalesce(v_details ->> 'error', 'the merge failed'), 2000),
                                               'hint', left(v_details ->> 'hint', 2000)),
           updated_at = now()
     WHERE node_id = p_node;
  ELSE
    IF v_node.init_state <> 'uninitialized' THEN
      v_node := steep_repl.transition(p_node, 'uninitialized', jsonb_build_object(
        'reason', CASE p_outcome WHEN 'cancelled' THEN 'merge with ' || v_peer || ' cancelled'
                                 ELSE 'merge with ' || v_peer || ' ended before it changed anything on this node' END,
        'merge_id', p_merge_id));
    END IF;
    UPDATE steep_repl.nodes SET init_source_node = NULL WHERE node_id = p_node RETURNING * INTO v_node;
    DELETE FROM steep_repl.init_table_progress WHERE node_id = p_node;
    DELETE FROM steep_repl.init_progress WHERE node_id = p_node;
  END CASE;

  v_reason := CASE p_outcome WHEN 'unchanged' THEN coalesce(v_details ->> 'reason', 'the merge ended before it changed anything on this node')
                             ELSE v_details ->> 'reason' END;
  PERFORM steep_repl.emit_event('merge.node_finished', p_node, jsonb_strip_nulls(jsonb_build_object(
    'merge_id', p_merge_id, 'outcome', p_outcome, 'peer_node', v_peer, 'coordinator', v_merge ->> 'coordinator',
    'role', v_merge ->> 'role', 'state', v_node.init_state, 'reason', v_reason,
    'error', CASE WHEN p_outcome = 'failed' THEN v_details ->> 'error' END,
    'hint', CASE WHEN p_outcome = 'failed' THEN v_details ->> 'hint' END,
    'kind', CASE WHEN p_outcome = 'failed' THEN v_details ->> 'kind' END,
    'tables_differing', CASE WHEN p_outcome = 'diverged' THEN (SELECT jsonb_agg(format('%I.%I', d ->> 'schema_name', d ->> 'table_name'))
                                                               FROM jsonb_array_elements(v_details -> 'divergence') d) END)));
  RETURN v_node;
END $$;
