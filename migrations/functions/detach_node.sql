-- Detach a node from replication: its agent removes the replication objects
-- of every pair the node is in, on both sides (the subscription on the
-- target, the publication and slots on the source, prepared slots), checks
-- what is left and moves the node to uninitialized; its rows stay. Runs on
-- the node's own database, returns at once; the outcome is the
-- node.detached (or node.detach_failed) event with the job's id.
CREATE OR REPLACE FUNCTION steep_repl.detach_node(p_node_id text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_node steep_repl.nodes := steep_repl.get_node(p_node_id);
  v_job bigint;
BEGIN
  PERFORM steep_repl.require_local_node('detach_node', p_node_id, 'node detach');
  SELECT * INTO v_node FROM steep_repl.nodes WHERE node_id = p_node_id FOR UPDATE;
  IF EXISTS (SELECT 1 FROM steep_repl.init_job(p_node_id))
     OR (SELECT in_progress FROM steep_repl.init_states WHERE state = v_node.init_state) THEN
    RAISE EXCEPTION 'node % is %: an initialization is in progress', quote_ident(p_node_id), v_node.init_state
      USING ERRCODE = 'SR006',
            HINT = format('cancel it first (steep-repl node cancel %s), which also removes what it created', steep_repl.shell_word(p_node_id));
  END IF;
  v_job := steep_repl.enqueue('detach_node', jsonb_build_object('node_id', p_node_id), 'detach:' || p_node_id, 3);
  PERFORM steep_repl.emit_event('node.detach_requested', p_node_id, jsonb_build_object('job_id', v_job, 'state', v_node.init_state));
  RETURN jsonb_build_object('node_id', p_node_id, 'job_id', v_job, 'state', v_node.init_state,
    'objects', (SELECT coalesce(jsonb_agg(to_jsonb(o) ORDER BY o.kind, o.name), '[]') FROM steep_repl.replication_objects(p_node_id) o),
    'follow', format('SELECT details FROM steep_repl.audit_log WHERE node_id = %L AND event IN (''node.detached'', ''node.detach_failed'') AND details ->> ''job_id'' = %L',
                     p_node_id, v_job::text));
END $$;
