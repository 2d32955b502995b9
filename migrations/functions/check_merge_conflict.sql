-- Every resolution of a merge conflict, however it is written (also a
-- DBA's plain UPDATE), is checked here before a merge --apply relies on
-- it: a (node A's row), b (node B's row) or row, whose resolved_row is a
-- whole row of the table (every column, no other) with the conflict's key.
-- Refusals are SR004 and change nothing; resolved_at follows.
CREATE OR REPLACE FUNCTION steep_repl.check_merge_conflict() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_rel regclass;
  v_label text := format('%I.%I', NEW.schema_name, NEW.table_name);
  v_unknown text;
  v_missing text;
  v_row jsonb;
  v_key jsonb;
  v_changed text;
BEGIN
  IF NEW.resolution IS NOT DISTINCT FROM OLD.resolution AND NEW.resolved_row IS NOT DISTINCT FROM OLD.resolved_row THEN
    RETURN NEW;
  END IF;
  IF NEW.resolution IS NULL THEN
    IF NEW.resolved_row IS NOT NULL THEN
      RAISE EXCEPTION 'resolved_row goes with resolution ''row'' (conflict % of %)', NEW.key, v_label USING ERRCODE = 'SR004';
    END IF;
    NEW.resolved_at := NULL;
    RETURN NEW;
  END IF;
  IF NEW.resolution NOT IN ('a', 'b', 'row') THEN
    RAISE EXCEPTION 'a resolution is a (node A''s row wins), b (node B''s row wins) or row (resolved_row, the row both nodes get), got %',
      quote_literal(NEW.resolution) USING ERRCODE = 'SR004';
  END IF;
  IF NEW.resolution IN ('a', 'b') THEN
    IF NEW.resolved_row IS NOT NULL THEN
      RAISE EXCEPTION 'resolution % takes no resolved_row (conflict % of %)', quote_literal(NEW.resolution), NEW.key, v_label
        USING ERRCODE = 'SR004', HINT = 'to give the row both nodes get, set resolution = ''row'' with resolved_row';
    END IF;
    NEW.resolved_at := now();
    RETURN NEW;
  END IF;

  IF NEW.resolved_row IS NULL OR jsonb_typeof(NEW.resolved_row) <> 'object' THEN
    RAISE EXCEPTION 'resolution row needs resolved_row, the row both nodes get as a JSON object (conflict % of %), got %',
      NEW.key, v_label, coalesce(NEW.resolved_row::text, 'NULL')
      USING ERRCODE = 'SR004', HINT = 'e.g. resolved_row = row_a || ''{"column": "value"}''';
  END IF;
  v_rel := to_regclass(v_label);
  IF v_rel IS NULL THEN
    RAISE EXCEPTION 'table % of conflict % does not exist in this database', v_label, NEW.key USING ERRCODE = 'SR004';
  END IF;
  SELECT string_agg(quote_ident(k), ', ' ORDER BY k) INTO v_unknown FROM jsonb_object_keys(NEW.resolved_row) k
   WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = v_rel AND a.attname = k AND a.attnum > 0 AND NOT a.attisdropped);
  IF v_unknown IS NOT NULL THEN
    RAISE EXCEPTION 'resolved_row of conflict % names column(s) table % does not have: %', NEW.key, v_label, v_unknown USING ERRCODE = 'SR004';
  END IF;
  -- a column left out would be written as NULL on both nodes
  SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO v_missing FROM pg_catalog.pg_attribute a
   WHERE a.attrelid = v_rel AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' AND NOT NEW.resolved_row ? a.attname;
  IF v_missing IS NOT NULL THEN
    RAISE EXCEPTION 'resolved_row of conflict % lacks column(s) of table %: %', NEW.key, v_label, v_missing
      USING ERRCODE = 'SR004', HINT = 'give every column, e.g. resolved_row = row_a || ''{"column": "value"}''';
  END IF;
  BEGIN
    EXECUTE format('SELECT to_jsonb(jsonb_populate_record(NULL::%s, $1)), to_jsonb(jsonb_populate_record(NULL::%s, $2))', v_rel, v_rel)
      INTO v_row, v_key USING NEW.resolved_row, NEW.key;
  EXCEPTION WHEN OTHERS THEN
    RAISE EXCEPTION 'resolved_row of conflict % does not fit table %: %', NEW.key, v_label, SQLERRM USING ERRCODE = 'SR004';
  END;
  SELECT string_agg(quote_ident(k), ', ' ORDER BY k) INTO v_changed FROM jsonb_object_keys(NEW.key) k
   WHERE v_row -> k IS DISTINCT FROM v_key -> k;
  IF v_changed IS NOT NULL THEN
    RAISE EXCEPTION 'resolved_row of conflict % has another value in key column(s) %: a resolution keeps the row''s key', NEW.key, v_changed
      USING ERRCODE = 'SR004';
  END IF;
  NEW.resolved_at := now();
  RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER merge_conflicts_check
  BEFORE UPDATE ON steep_repl.merge_conflicts
  FOR EACH ROW EXECUTE FUNCTION steep_repl.check_merge_conflict();
