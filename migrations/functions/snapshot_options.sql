-- Options of generate_snapshot, checked as init options are (option_value:
-- the same words for the same kinds) and completed with their defaults. An
-- unknown key is refused by name, so a typo never falls back to a default.
CREATE OR REPLACE FUNCTION steep_repl.snapshot_options(p_options jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_opts jsonb := coalesce(p_options, '{}');
  v_specs steep_repl.init_option_specs[];
  v_spec steep_repl.init_option_specs;
  v_key text;
  v_value jsonb;
  v_result jsonb := '{}';
BEGIN
  SELECT array_agg(jsonb_populate_record(NULL::steep_repl.init_option_specs, s) ORDER BY s ->> 'option') INTO v_specs
    FROM jsonb_array_elements(jsonb_build_array(
      jsonb_build_object('option', 'parallel', 'kind', 'integer', 'min_value', 1, 'max_value', 16, 'default_value', 4,
                         'description', 'workers writing parts at once'),
      jsonb_build_object('option', 'compression', 'kind', 'choice', 'choices', ARRAY['none', 'gzip', 'zstd', 'lz4'],
                         'default_value', 'zstd', 'description', 'how the data files are compressed'),
      jsonb_build_object('option', 'split_tables_larger_than', 'kind', 'bytes', 'min_value', 1048576,
                         'max_value', 1125899906842624, 'default_value', 1073741824,
                         'description', 'split a table whose heap plus TOAST is larger than this into parts'),
      jsonb_build_object('option', 'max_parts', 'kind', 'integer', 'min_value', 1, 'max_value', 1024, 'default_value', 32,
                         'description', 'at most this many parts per table'),
      jsonb_build_object('option', 'expires', 'kind', 'duration', 'min_value', 60, 'max_value', 31536000,
                         'default_value', 604800, 'description', 'the snapshot and its slot live this long'))) s;
  IF jsonb_typeof(v_opts) <> 'object' THEN
    RAISE EXCEPTION 'snapshot options must be a JSON object, got %', jsonb_typeof(v_opts) USING ERRCODE = 'SR004';
  END IF;
  FOR v_key IN SELECT jsonb_object_keys(v_opts) LOOP
    IF NOT EXISTS (SELECT 1 FROM unnest(v_specs) s WHERE s.option = v_key) THEN
      RAISE EXCEPTION 'unknown snapshot option %', quote_literal(v_key)
        USING ERRCODE = 'SR004', HINT = 'generate_snapshot takes: ' || (SELECT string_agg(s.option, ', ') FROM unnest(v_specs) s);
    END IF;
  END LOOP;
  FOREACH v_spec IN ARRAY v_specs LOOP
    v_value := v_opts -> v_spec.option;
    v_result := v_result || jsonb_build_object(v_spec.option,
      CASE WHEN v_value IS NULL OR jsonb_typeof(v_value) = 'null' THEN v_spec.default_value
           ELSE steep_repl.option_value(v_spec, v_value) END);
  END LOOP;
  RETURN v_result;
END $$;
