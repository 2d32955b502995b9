-- Run on the source: records a two-phase snapshot to be written to
-- p_output_dir (a directory on the machine of this node's agent, which must
-- not exist or be empty) and queues its generate for the agent (task
-- snapshot_generate). The agent makes the publication, then the slot with an
-- exported snapshot, and writes the files at that instant; follow it with
-- snapshot_status or on steep_repl_progress / steep_repl_events. Options:
-- snapshot_options. The slot and the publication are both named
-- steep_<snapshot id>.
CREATE OR REPLACE FUNCTION steep_repl.generate_snapshot(p_output_dir text, p_options jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_local text := steep_repl.local_node_id();
  v_opts jsonb := steep_repl.snapshot_options(p_options);
  v_dir text := p_output_dir;
  v_other steep_repl.snapshots;
  v_id text;
  v_row steep_repl.snapshots;
  v_job bigint;
BEGIN
  IF v_local IS NULL THEN
    RAISE EXCEPTION 'this database is not registered as a local node, so it cannot be the source of a snapshot'
      USING ERRCODE = 'SR004', HINT = 'register it with steep-repl node register <id> ... --local, and run its agent';
  END IF;
  IF v_dir IS NULL OR v_dir !~ '^/' THEN
    RAISE EXCEPTION 'the output directory must be an absolute path, got %', quote_nullable(v_dir)
      USING ERRCODE = 'SR004',
            HINT = 'a directory on the machine this node''s agent runs on, e.g. /var/lib/steep-repl/snapshots/' || v_local;
  END IF;
  -- one spelling per directory: repeated and trailing slashes go
  v_dir := regexp_replace(v_dir, '/+', '/', 'g');
  IF length(v_dir) > 1 THEN
    v_dir := rtrim(v_dir, '/');
  END IF;
  IF v_dir = '/' OR v_dir ~ '(^|/)\.\.?(/|$)' OR v_dir ~ '[[:cntrl:]]' OR length(v_dir) > 4000 THEN
    RAISE EXCEPTION 'the output directory % is not usable: give the directory itself, without . or .. parts or control characters (at most 4000 characters)',
      quote_literal(left(p_output_dir, 200)) USING ERRCODE = 'SR004';
  END IF;
  SELECT * INTO v_other FROM steep_repl.snapshots WHERE output_dir = v_dir AND state IN ('generating', 'ready');
  IF FOUND THEN
    RAISE EXCEPTION 'snapshot % (%) already uses directory %', v_other.snapshot_id, v_other.state, v_dir
      USING ERRCODE = 'SR006',
            HINT = format('choose another directory, or delete that snapshot first (steep-repl snapshot delete %s; SQL: SELECT steep_repl.delete_snapshot(%L))',
                          v_other.snapshot_id, v_other.snapshot_id);
  END IF;

  LOOP
    v_id := 'snap_' || to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDD_HH24MISS') || '_'
            || substr(md5(random()::text || clock_timestamp()::text), 1, 4);
    EXIT WHEN NOT EXISTS (SELECT 1 FROM steep_repl.snapshots WHERE snapshot_id = v_id);
  END LOOP;
  INSERT INTO steep_repl.snapshots (snapshot_id, source_node_id, output_dir, compression, parallel, split_tables_larger_than,
                                    max_parts, slot_name, publication, expires_at)
  VALUES (v_id, v_local, v_dir, v_opts ->> 'compression', (v_opts ->> 'parallel')::int, (v_opts ->> 'split_tables_larger_than')::bigint,
          (v_opts ->> 'max_parts')::int, 'steep_' || v_id, 'steep_' || v_id, now() + make_interval(secs => (v_opts ->> 'expires')::bigint))
  RETURNING * INTO v_row;

  v_job := steep_repl.enqueue('snapshot_generate', jsonb_build_object('snapshot_id', v_id), 'snapshot_generate:' || v_id, 25);
  UPDATE steep_repl.snapshots SET job_id = v_job WHERE snapshot_id = v_id RETURNING * INTO v_row;
  -- the watch over the snapshots' slots runs while one is generating or ready
  PERFORM graphile_worker.add_job('snapshot_watch', '{}'::json, job_key => 'snapshot_watch', max_attempts => 5);

  PERFORM steep_repl.emit_event('snapshot.generate_started', v_local, jsonb_build_object(
    'snapshot_id', v_id, 'output_dir', v_dir, 'options', v_opts, 'job_id', v_job, 'expires_at', v_row.expires_at));

  RETURN jsonb_build_object(
    'snapshot_id', v_id,
    'source_node_id', v_local,
    'state', v_row.state,
    'output_dir', v_dir,
    'slot_name', v_row.slot_name,
    'publication', v_row.publication,
    'expires_at', v_row.expires_at,
    'job_id', v_job,
    'options', v_opts,
    'follow', jsonb_build_object(
      'status', format('SELECT steep_repl.snapshot_status(%L)', v_id),
      'channels', jsonb_build_array('steep_repl_progress', 'steep_repl_events'),
      'delete', format('SELECT steep_repl.delete_snapshot(%L)', v_id)));
END $$;
