-- Conflicts of a table, from the merge job: [{key, kind, row_a, row_b,
-- hash_a, hash_b}] (kind conflict by default). A key recorded already gets
-- the new rows, hashes and kind; a resolution made for other rows than
-- these goes. Returns how many were written.
CREATE OR REPLACE FUNCTION steep_repl.record_merge_conflicts(p_merge_id bigint, p_schema text, p_table text, p_rows jsonb) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
  v_run steep_repl.merge_runs;
  v_rows jsonb := coalesce(p_rows, '[]');
  v_count int;
BEGIN
  v_run := steep_repl.get_merge(p_merge_id);
  IF v_run.state NOT IN ('queued', 'running') THEN
    RAISE EXCEPTION 'merge % has ended (%): its conflicts are not recorded any more', p_merge_id, v_run.state USING ERRCODE = 'SR003';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM steep_repl.merge_tables WHERE merge_id = p_merge_id AND schema_name = p_schema AND table_name = p_table) THEN
    RAISE EXCEPTION 'table %.% is not part of merge %', quote_ident(p_schema), quote_ident(p_table), p_merge_id USING ERRCODE = 'SR004';
  END IF;
  IF jsonb_typeof(v_rows) <> 'array'
     OR EXISTS (SELECT 1 FROM jsonb_array_elements(v_rows) r
                 WHERE jsonb_typeof(r) <> 'object' OR jsonb_typeof(r -> 'key') IS DISTINCT FROM 'object'
                    OR coalesce(r ->> 'kind', 'conflict') NOT IN ('conflict', 'concurrent', 'unique')) THEN
    RAISE EXCEPTION 'conflicts are a JSON array of {key: {...}, kind: conflict|concurrent|unique, row_a, row_b, hash_a, hash_b}'
      USING ERRCODE = 'SR004';
  END IF;
  INSERT INTO steep_repl.merge_conflicts AS c (merge_id, schema_name, table_name, key, kind, row_a, row_b, hash_a, hash_b)
  -- a key given twice: the last one counts (one row can be written once per statement)
  SELECT DISTINCT ON (r -> 'key') p_merge_id, p_schema, p_table, r -> 'key', coalesce(r ->> 'kind', 'conflict'),
         nullif(r -> 'row_a', 'null'), nullif(r -> 'row_b', 'null'), r ->> 'hash_a', r ->> 'hash_b'
    FROM jsonb_array_elements(v_rows) WITH ORDINALITY AS e(r, n)
   ORDER BY r -> 'key', n DESC
  ON CONFLICT (merge_id, schema_name, table_name, key) DO UPDATE
    SET kind = EXCLUDED.kind, row_a = EXCLUDED.row_a, row_b = EXCLUDED.row_b, hash_a = EXCLUDED.hash_a, hash_b = EXCLUDED.hash_b,
        resolution = CASE WHEN (c.hash_a, c.hash_b) IS NOT DISTINCT FROM (EXCLUDED.hash_a, EXCLUDED.hash_b) THEN c.resolution END,
        resolved_row = CASE WHEN (c.hash_a, c.hash_b) IS NOT DISTINCT FROM (EXCLUDED.hash_a, EXCLUDED.hash_b) THEN c.resolved_row END;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END $$;
