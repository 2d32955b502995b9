-- A table's result once its differences are rechecked: status (equal,
-- differs, unsettled), how it was compared, its counts; and the keys that
-- differ, kept up to the run's key limit (a call may bring more keys only,
-- p_result NULL). The first ten become sample_keys.
CREATE OR REPLACE FUNCTION steep_repl.record_verify_table(p_verify_id bigint, p_schema text, p_table text,
                                                          p_result jsonb, p_differences jsonb DEFAULT '[]')
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_run steep_repl.verify_runs;
  v_room int;
BEGIN
  SELECT * INTO v_run FROM steep_repl.verify_runs WHERE verify_id = p_verify_id;
  IF NOT FOUND THEN
    PERFORM steep_repl.verify_status(p_verify_id);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM steep_repl.verify_tables WHERE verify_id = p_verify_id AND schema_name = p_schema AND table_name = p_table) THEN
    RAISE EXCEPTION 'table %.% is not part of verify %', quote_ident(p_schema), quote_ident(p_table), p_verify_id USING ERRCODE = 'SR004';
  END IF;
  IF p_result IS NOT NULL AND coalesce(p_result ->> 'status', '') NOT IN ('equal', 'differs', 'unsettled') THEN
    RAISE EXCEPTION 'a table''s verify result is equal, differs or unsettled, got %', quote_nullable(p_result ->> 'status')
      USING ERRCODE = 'SR004';
  END IF;

  v_room := coalesce((v_run.options ->> 'key_limit')::int, 1000)
            - (SELECT count(*) FROM steep_repl.verify_differences WHERE verify_id = p_verify_id AND schema_name = p_schema AND table_name = p_table);
  INSERT INTO steep_repl.verify_differences (verify_id, schema_name, table_name, key, kind)
  SELECT p_verify_id, p_schema, p_table, d -> 'key', d ->> 'kind'
    FROM jsonb_array_elements(coalesce(p_differences, '[]')) WITH ORDINALITY AS e(d, n)
   ORDER BY n LIMIT greatest(v_room, 0)
  ON CONFLICT DO NOTHING;

  UPDATE steep_repl.verify_tables t
     SET status = coalesce(p_result ->> 'status', t.status),
         compared = coalesce(p_result ->> 'compared', t.compared),
         note = coalesce(p_result ->> 'note', t.note),
         rows_estimate = coalesce((p_result ->> 'rows_estimate')::bigint, t.rows_estimate),
         ranges_total = coalesce((p_result ->> 'ranges_total')::int, t.ranges_total),
         ranges_done = coalesce((p_result ->> 'ranges_done')::int, t.ranges_done),
         ranges_differing = coalesce((p_result ->> 'ranges_differing')::int, t.ranges_differing),
         rows_compared = coalesce((p_result ->> 'rows_compared')::bigint, t.rows_compared),
         rows_missing = coalesce((p_result ->> 'rows_missing')::bigint, t.rows_missing),
         rows_extra = coalesce((p_result ->> 'rows_extra')::bigint, t.rows_extra),
         rows_different = coalesce((p_result ->> 'rows_different')::bigint, t.rows_different),
         rows_unsettled = coalesce((p_result ->> 'rows_unsettled')::bigint, t.rows_unsettled),
         sample_keys = CASE WHEN t.sample_keys = '[]'
                            THEN coalesce((SELECT jsonb_agg(d -> 'key' ORDER BY n)
                                           FROM jsonb_array_elements(coalesce(p_differences, '[]')) WITH ORDINALITY AS e(d, n) WHERE n <= 10), '[]')
                            ELSE t.sample_keys END,
         started_at = coalesce(t.started_at, now()),
         finished_at = CASE WHEN p_result IS NOT NULL THEN now() ELSE t.finished_at END
   WHERE t.verify_id = p_verify_id AND t.schema_name = p_schema AND t.table_name = p_table;
END $$;
