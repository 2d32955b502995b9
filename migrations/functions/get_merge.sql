-- The merge run of that id, or an error that names the latest ones.
CREATE OR REPLACE FUNCTION steep_repl.get_merge(p_merge_id bigint) RETURNS steep_repl.merge_runs
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_run steep_repl.merge_runs;
BEGIN
  SELECT * INTO v_run FROM steep_repl.merge_runs WHERE merge_id = p_merge_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown merge %', coalesce(p_merge_id::text, 'NULL')
      USING ERRCODE = 'SR004',
            HINT = coalesce('the latest: ' || (SELECT string_agg(format('%s (%s with %s)', merge_id, quote_ident(node_a), quote_ident(node_b)), ', ' ORDER BY merge_id DESC)
                                              FROM (SELECT merge_id, node_a, node_b FROM steep_repl.merge_runs ORDER BY merge_id DESC LIMIT 5) l),
                            'no merge has run in this database');
  END IF;
  RETURN v_run;
END $$;
