-- Run in the transaction that copied the part, so its rows and its done
-- state commit together (or neither does).
CREATE OR REPLACE FUNCTION steep_repl.finish_init_part(p_node_id text, p_leaf_schema text, p_leaf_name text, p_part_no integer,
                                                       p_rows bigint, p_bytes bigint)
RETURNS steep_repl.init_parts LANGUAGE plpgsql AS $$
DECLARE
  v_part steep_repl.init_parts;
BEGIN
  UPDATE steep_repl.init_parts
     SET state = 'done', rows_copied = p_rows, bytes_copied = p_bytes, worker = NULL, finished_at = clock_timestamp()
   WHERE node_id = p_node_id AND leaf_schema = p_leaf_schema AND leaf_name = p_leaf_name AND part_no = p_part_no
     AND state = 'copying'
  RETURNING * INTO v_part;
  IF v_part.node_id IS NULL THEN
    RAISE EXCEPTION 'part % of %.% of node % is not being copied', p_part_no, quote_ident(p_leaf_schema), quote_ident(p_leaf_name),
      quote_ident(p_node_id) USING ERRCODE = 'SR003';
  END IF;
  RETURN v_part;
END $$;
