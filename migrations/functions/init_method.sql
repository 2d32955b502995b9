-- The init method of that name, if it can be used: an unknown method and one
-- that is not available yet are refused, naming those that are.
CREATE OR REPLACE FUNCTION steep_repl.init_method(p_method text) RETURNS steep_repl.init_methods
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_method steep_repl.init_methods;
  v_available text := (SELECT string_agg(method, ', ' ORDER BY position) FROM steep_repl.init_methods WHERE available);
BEGIN
  SELECT * INTO v_method FROM steep_repl.init_methods WHERE method = p_method;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown init method %', quote_nullable(p_method)
      USING ERRCODE = 'SR004', HINT = 'methods: ' || v_available;
  END IF;
  -- a merge is two nodes' job, started from node A's database with its own options
  IF p_method = 'merge' THEN
    RAISE EXCEPTION 'merge is started with steep-repl node merge (steep_repl.start_merge)'
      USING ERRCODE = 'SR004', HINT = 'steep-repl node merge <node-a> <node-b> --analyze, then --strategy; methods of node start: ' || v_available;
  END IF;
  IF NOT v_method.available THEN
    RAISE EXCEPTION 'init method % is not available yet', quote_literal(p_method)
      USING ERRCODE = 'SR004', HINT = 'methods: ' || v_available;
  END IF;
  RETURN v_method;
END $$;
