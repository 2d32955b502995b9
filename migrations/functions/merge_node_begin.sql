-- A node enters a merge, on its own database (the merge job calls it on
-- both nodes): it becomes preparing, with its peer as init_source_node and
-- an init_progress row of method 'merge' whose merge column says which
-- merge, the coordinator (node A, whose database has the run), this node's
-- role and the step. Called again for the merge it is in already (a
-- resumed job), it returns the merge as it is and changes nothing. Only an
-- uninitialized or failed node without an init or another merge enters.
CREATE OR REPLACE FUNCTION steep_repl.merge_node_begin(p_node text, p_peer text, p_merge jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_merge jsonb := coalesce(p_merge, '{}');
  v_node steep_repl.nodes;
  v_progress steep_repl.init_progress;
  v_merge_id bigint;
  v_other bigint;
BEGIN
  PERFORM steep_repl.require_local_node('merge_node_begin', p_node, 'node merge');
  IF jsonb_typeof(v_merge) <> 'object' OR jsonb_typeof(v_merge -> 'merge_id') IS DISTINCT FROM 'number'
     OR jsonb_typeof(v_merge -> 'coordinator') IS DISTINCT FROM 'string' OR coalesce(v_merge ->> 'role', '') NOT IN ('a', 'b')
     OR coalesce(jsonb_typeof(v_merge -> 'strategy'), 'null') NOT IN ('string', 'null')
     OR coalesce(jsonb_typeof(v_merge -> 'tables_total'), 'number') <> 'number' THEN
    RAISE EXCEPTION 'a merge is {merge_id, coordinator, role: a|b, strategy, tables_total}, got %', v_merge USING ERRCODE = 'SR004';
  END IF;
  IF p_peer IS NOT DISTINCT FROM p_node THEN
    RAISE EXCEPTION 'node % cannot be merged with itself', quote_ident(p_node) USING ERRCODE = 'SR004';
  END IF;
  PERFORM steep_repl.get_node(p_peer);
  IF v_merge ->> 'coordinator' <> (CASE v_merge ->> 'role' WHEN 'a' THEN p_node ELSE p_peer END) THEN
    RAISE EXCEPTION 'the coordinator of a merge is node A: % as role %, peer %, names %', quote_ident(p_node), v_merge ->> 'role',
      quote_ident(p_peer), quote_ident(v_merge ->> 'coordinator') USING ERRCODE = 'SR004';
  END IF;
  v_merge_id := (v_merge ->> 'merge_id')::bigint;

  -- Serializes begin, step, finish and cancel for this node.
  SELECT * INTO v_node FROM steep_repl.nodes WHERE node_id = p_node FOR UPDATE;
  SELECT * INTO v_progress FROM steep_repl.init_progress WHERE node_id = p_node FOR UPDATE;
  IF (v_progress.merge ->> 'merge_id')::bigint = v_merge_id AND v_progress.merge ->> 'coordinator' = v_merge ->> 'coordinator'
     AND v_progress.merge ->> 'outcome' IS NULL THEN
    RETURN v_progress.merge || jsonb_build_object('resumed', true, 'node_state', v_node.init_state);
  END IF;

  IF EXISTS (SELECT 1 FROM steep_repl.init_job(p_node)) THEN
    RAISE EXCEPTION 'node % is %: an initialization or reinit of it is queued or running', quote_ident(p_node), v_node.init_state
      USING ERRCODE = 'SR006', HINT = 'wait for it, or stop it with steep-repl node cancel';
  END IF;
  -- this node coordinating a merge of its own (on A, the job calling this is the merge's own)
  SELECT j.merge_id INTO v_other FROM steep_repl.merge_job(p_node) j
   WHERE (j.locked_at IS NOT NULL OR j.attempts < j.max_attempts)
     AND (v_merge ->> 'role' = 'b' OR j.merge_id IS DISTINCT FROM v_merge_id)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'node % is in merge % of its own, queued or running', quote_ident(p_node), coalesce(v_other::text, '(unknown)')
      USING ERRCODE = 'SR006', HINT = format('wait for it, or stop it with SELECT steep_repl.cancel_merge(%L) on its database', p_node);
  END IF;
  IF v_node.init_state NOT IN ('uninitialized', 'failed') THEN
    RAISE EXCEPTION 'node % is %: only an uninitialized node, or one whose merge or initialization failed, is merged', quote_ident(p_node), v_node.init_state
      USING ERRCODE = 'SR003',
            HINT = CASE WHEN (SELECT in_progress FROM steep_repl.init_states WHERE state = v_node.init_state)
                        THEN 'wait until it has finished, or stop it with steep-repl node cancel'
                        ELSE format('it replicates already; detach it first (steep-repl node detach %s)', steep_repl.shell_word(p_node)) END;
  END IF;

  v_merge := jsonb_build_object('merge_id', v_merge_id, 'coordinator', v_merge ->> 'coordinator', 'peer_node_id', p_peer,
                                'role', v_merge ->> 'role', 'strategy', v_merge -> 'strategy',
                                'tables_total', coalesce((v_merge ->> 'tables_total')::int, 0), 'step', 'queued', 'error', NULL);
  PERFORM steep_repl.transition(p_node, 'preparing', jsonb_build_object('reason', 'merge with ' || p_peer, 'merge_id', v_merge_id,
                                                                       'peer_node', p_peer, 'role', v_merge ->> 'role'));
  UPDATE steep_repl.nodes SET init_source_node = p_peer WHERE node_id = p_node;
  -- what a failed init or merge left in the row goes; its replication objects are the job's
  DELETE FROM steep_repl.init_table_progress WHERE node_id = p_node;
  DELETE FROM steep_repl.init_progress WHERE node_id = p_node;
  INSERT INTO steep_repl.init_progress (node_id, source_node_id, method, phase, tables_total, merge)
  VALUES (p_node, p_peer, 'merge', 'preparing', (v_merge ->> 'tables_total')::int, v_merge);
  PERFORM steep_repl.emit_event('merge.node_started', p_node, jsonb_build_object(
    'merge_id', v_merge_id, 'peer_node', p_peer, 'coordinator', v_merge ->> 'coordinator', 'role', v_merge ->> 'role',
    'strategy', v_merge -> 'strategy', 'previous_state', v_node.init_state));
  RETURN v_merge || jsonb_build_object('resumed', false, 'node_state', 'preparing');
END $$;
