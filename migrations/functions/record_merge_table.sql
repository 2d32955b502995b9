-- A table's share of a merge as the job finds it: any merge_tables columns
-- (status, the counts, sample_keys, verify, note, started_at, finished_at);
-- those left out stay. A table the run does not have yet is added. The
-- first status past pending starts the table's clock.
CREATE OR REPLACE FUNCTION steep_repl.record_merge_table(p_merge_id bigint, p_schema text, p_table text, p jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_report jsonb := coalesce(p, '{}');
  v_run steep_repl.merge_runs;
  v_row steep_repl.merge_tables;
  v_bad text;
BEGIN
  IF jsonb_typeof(v_report) <> 'object' THEN
    RAISE EXCEPTION 'a merge table report is a JSON object, got %', v_report USING ERRCODE = 'SR004';
  END IF;
  SELECT string_agg(quote_literal(k), ', ' ORDER BY k) INTO v_bad FROM jsonb_object_keys(v_report) k
   WHERE k IN ('merge_id', 'schema_name', 'table_name')
      OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                      WHERE a.attrelid = 'steep_repl.merge_tables'::regclass AND a.attname = k AND a.attnum > 0 AND NOT a.attisdropped);
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION 'unknown merge table field %', v_bad USING ERRCODE = 'SR004';
  END IF;
  IF p_schema IS NULL OR p_table IS NULL THEN
    RAISE EXCEPTION 'name the table: schema and table' USING ERRCODE = 'SR004';
  END IF;
  v_run := steep_repl.get_merge(p_merge_id);
  IF v_run.state NOT IN ('queued', 'running') THEN
    RAISE EXCEPTION 'merge % has ended (%): its tables are not recorded any more', p_merge_id, v_run.state USING ERRCODE = 'SR003';
  END IF;

  SELECT * INTO v_row FROM steep_repl.merge_tables WHERE merge_id = p_merge_id AND schema_name = p_schema AND table_name = p_table FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO steep_repl.merge_tables (merge_id, schema_name, table_name) VALUES (p_merge_id, p_schema, p_table)
    RETURNING * INTO v_row;
    UPDATE steep_repl.merge_runs SET tables_total = tables_total + 1, updated_at = now() WHERE merge_id = p_merge_id;
  END IF;
  v_row := jsonb_populate_record(v_row, v_report);
  IF v_row.status <> 'pending' THEN
    v_row.started_at := coalesce(v_row.started_at, now());
  END IF;
  UPDATE steep_repl.merge_tables t
     SET status = v_row.status, rows_a = v_row.rows_a, rows_b = v_row.rows_b, rows_identical = v_row.rows_identical,
         rows_only_a = v_row.rows_only_a, rows_only_b = v_row.rows_only_b, rows_conflicting = v_row.rows_conflicting,
         conflicts_won_a = v_row.conflicts_won_a, conflicts_won_b = v_row.conflicts_won_b,
         rows_to_a = v_row.rows_to_a, rows_to_b = v_row.rows_to_b, rows_changed_during = v_row.rows_changed_during,
         sample_keys = coalesce(v_row.sample_keys, '{}'), verify = v_row.verify, note = v_row.note,
         started_at = v_row.started_at, finished_at = v_row.finished_at
   WHERE t.merge_id = p_merge_id AND t.schema_name = p_schema AND t.table_name = p_table;
END $$;
