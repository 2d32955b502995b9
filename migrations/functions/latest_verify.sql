-- The node's most recent verify (verify_status), NULL when it never had one.
CREATE OR REPLACE FUNCTION steep_repl.latest_verify(p_node text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_verify_id bigint;
BEGIN
  PERFORM steep_repl.get_node(p_node);
  SELECT verify_id INTO v_verify_id FROM steep_repl.verify_runs WHERE node_id = p_node ORDER BY verify_id DESC LIMIT 1;
  IF v_verify_id IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN steep_repl.verify_status(v_verify_id);
END $$;
