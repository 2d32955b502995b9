-- Run once the part's file is whole on disk (written, synced, renamed):
-- what it holds, then done. snapshot.part_written is emitted for every part
-- of a snapshot of up to 100 parts, else for about every hundredth, and for
-- the last one.
CREATE OR REPLACE FUNCTION steep_repl.finish_snapshot_part(p_snapshot_id text, p_leaf_schema text, p_leaf_name text, p_part_no integer,
                                                           p_rows bigint, p_raw_bytes bigint, p_stored_bytes bigint, p_sha256 text)
RETURNS steep_repl.snapshot_parts LANGUAGE plpgsql AS $$
DECLARE
  v_part steep_repl.snapshot_parts;
  v_total integer;
  v_done integer;
BEGIN
  UPDATE steep_repl.snapshot_parts
     SET state = 'done', rows = p_rows, raw_bytes = p_raw_bytes, stored_bytes = p_stored_bytes, sha256 = p_sha256,
         rows_written = p_rows, bytes_written = p_raw_bytes, worker = NULL, finished_at = clock_timestamp()
   WHERE snapshot_id = p_snapshot_id AND leaf_schema = p_leaf_schema AND leaf_name = p_leaf_name AND part_no = p_part_no
     AND state = 'writing'
  RETURNING * INTO v_part;
  IF v_part.snapshot_id IS NULL THEN
    RAISE EXCEPTION 'part % of %.% of snapshot % is not being written', p_part_no, quote_ident(p_leaf_schema), quote_ident(p_leaf_name),
      p_snapshot_id USING ERRCODE = 'SR003';
  END IF;
  SELECT count(*), count(*) FILTER (WHERE state = 'done') INTO v_total, v_done
    FROM steep_repl.snapshot_parts WHERE snapshot_id = p_snapshot_id;
  IF v_total <= 100 OR v_done = v_total OR v_done % ceil(v_total / 100.0)::integer = 0 THEN
    PERFORM steep_repl.emit_event('snapshot.part_written', (SELECT source_node_id FROM steep_repl.snapshots WHERE snapshot_id = p_snapshot_id),
      jsonb_build_object(
        'snapshot_id', p_snapshot_id, 'table', format('%I.%I', v_part.schema_name, v_part.table_name),
        'leaf', format('%I.%I', v_part.leaf_schema, v_part.leaf_name), 'part_no', v_part.part_no, 'part_count', v_part.part_count,
        'file_name', v_part.file_name, 'rows', p_rows, 'raw_bytes', p_raw_bytes, 'stored_bytes', p_stored_bytes,
        'seconds', round(extract(epoch FROM v_part.finished_at - v_part.started_at)::numeric, 3), 'writes', v_part.writes,
        'parts_done', v_done, 'parts_total', v_total));
  END IF;
  RETURN v_part;
END $$;
