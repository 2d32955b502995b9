-- The newest merge run in this database that node p_node is in, as A or B
-- (merge_status), NULL when there is none.
CREATE OR REPLACE FUNCTION steep_repl.latest_merge(p_node text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_merge_id bigint;
BEGIN
  PERFORM steep_repl.get_node(p_node);
  SELECT max(merge_id) INTO v_merge_id FROM steep_repl.merge_runs WHERE node_a = p_node OR node_b = p_node;
  IF v_merge_id IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN steep_repl.merge_status(v_merge_id);
END $$;
