-- Run on a database restored from a base backup (node complete, on the
-- copy): where its recovery ended, from its newest timeline's history file
-- pg_wal/<TLI>.history, whose last line is parentTLI, switchpoint, reason.
-- A copy stopped by recovery_target_lsn = 'H' with inclusive = off says
-- 'before LSN Y' (stop 'before', stop_lsn Y); stop and stop_lsn are NULL
-- for any other reason (no recovery target specified: replayed to the end).
-- Timeline 1 has no history: never promoted from a recovery (others NULL).
-- Reading the file needs superuser or pg_read_server_files.
CREATE OR REPLACE FUNCTION steep_repl.recovery_end() RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_result jsonb := jsonb_build_object('in_recovery', pg_catalog.pg_is_in_recovery(), 'timeline', NULL,
    'parent_timeline', NULL, 'switchpoint', NULL, 'stop', NULL, 'stop_lsn', NULL, 'reason', NULL,
    'system_identifier', (SELECT system_identifier::text FROM pg_catalog.pg_control_system()));
  v_timeline integer;
  v_file text;
  v_line text[];
BEGIN
  IF pg_catalog.pg_is_in_recovery() THEN
    -- pg_current_wal_lsn() is refused during recovery: the last checkpoint's
    RETURN v_result || jsonb_build_object('timeline', (SELECT timeline_id FROM pg_catalog.pg_control_checkpoint()));
  END IF;
  v_timeline := ('x' || left(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 8))::bit(32)::integer;
  v_result := v_result || jsonb_build_object('timeline', v_timeline);
  IF v_timeline = 1 THEN
    RETURN v_result;
  END IF;
  v_file := format('pg_wal/%s.history', upper(lpad(to_hex(v_timeline), 8, '0')));
  BEGIN
    IF (pg_catalog.pg_stat_file(v_file, true)).size IS NULL THEN
      RETURN v_result || jsonb_build_object('reason', format('%s is missing', v_file));
    END IF;
    -- the last line that is not empty nor a comment
    SELECT regexp_split_to_array(l, '\t') INTO v_line
      FROM regexp_split_to_table(pg_catalog.pg_read_file(v_file), '\n') WITH ORDINALITY AS t(l, n)
     WHERE l !~ '^\s*(#|$)'
     ORDER BY n DESC LIMIT 1;
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'reading % needs superuser or the pg_read_server_files role (role %)', v_file, current_user
      USING ERRCODE = 'SR004', HINT = format('GRANT pg_read_server_files TO %I, or run it as a superuser', current_user);
  END;
  IF v_line IS NULL OR cardinality(v_line) < 3 THEN
    RETURN v_result || jsonb_build_object('reason', format('%s has no timeline switch line', v_file));
  END IF;
  v_result := v_result || jsonb_build_object('parent_timeline', v_line[1]::integer, 'switchpoint', v_line[2]::pg_lsn::text,
                                             'reason', v_line[3]);
  IF v_line[3] ~ '^(before|after) LSN [0-9A-Fa-f]+/[0-9A-Fa-f]+$' THEN
    v_result := v_result || jsonb_build_object('stop', split_part(v_line[3], ' ', 1),
                                               'stop_lsn', split_part(v_line[3], ' ', 3)::pg_lsn::text);
  END IF;
  RETURN v_result;
END $$;
