-- Options of start_init for one method, checked against init_option_specs
-- and completed with their defaults. A key no method knows, and a key of
-- another method, are refused by name, so a typo never silently falls back
-- to a default.
CREATE OR REPLACE FUNCTION steep_repl.init_options(p_method text, p_options jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_method steep_repl.init_methods := steep_repl.init_method(p_method);
  v_opts jsonb := coalesce(p_options, '{}');
  v_key text;
  v_spec steep_repl.init_option_specs;
  v_value jsonb;
  v_number numeric;
  v_text text;
  v_result jsonb := '{}';
BEGIN
  IF jsonb_typeof(v_opts) <> 'object' THEN
    RAISE EXCEPTION 'init options must be a JSON object, got %', jsonb_typeof(v_opts) USING ERRCODE = 'SR004';
  END IF;
  FOR v_key IN SELECT jsonb_object_keys(v_opts) LOOP
    IF NOT EXISTS (SELECT 1 FROM steep_repl.init_option_specs WHERE option = v_key) THEN
      RAISE EXCEPTION 'unknown init option %', quote_literal(v_key)
        USING ERRCODE = 'SR004', HINT = format('method %s takes: %s', p_method, array_to_string(v_method.options, ', '));
    END IF;
    IF NOT v_key = ANY (v_method.options) THEN
      RAISE EXCEPTION 'init option % does not apply to method %', quote_literal(v_key), p_method
        USING ERRCODE = 'SR004',
              HINT = format('method %s takes: %s; %s is an option of: %s', p_method, array_to_string(v_method.options, ', '),
                            v_key, (SELECT string_agg(m.method, ', ' ORDER BY m.position)
                                      FROM steep_repl.init_methods m WHERE v_key = ANY (m.options)));
    END IF;
  END LOOP;

  FOR v_spec IN SELECT s.* FROM steep_repl.init_option_specs s
                 WHERE s.option = ANY (v_method.options) ORDER BY s.option LOOP
    v_value := v_opts -> v_spec.option;
    IF v_value IS NULL OR jsonb_typeof(v_value) = 'null' THEN
      v_result := v_result || jsonb_build_object(v_spec.option, v_spec.default_value);
      CONTINUE;
    END IF;
    v_number := NULL;
    CASE v_spec.kind
    WHEN 'boolean' THEN
      IF jsonb_typeof(v_value) <> 'boolean' THEN
        RAISE EXCEPTION 'option % must be true or false, got %', v_spec.option, v_value USING ERRCODE = 'SR004';
      END IF;
    WHEN 'choice' THEN
      IF jsonb_typeof(v_value) <> 'string' OR NOT (v_value #>> '{}') = ANY (v_spec.choices) THEN
        RAISE EXCEPTION 'option % must be %, got %', v_spec.option, array_to_string(v_spec.choices, ', ', ''), v_value
          USING ERRCODE = 'SR004';
      END IF;
    WHEN 'integer' THEN
      IF jsonb_typeof(v_value) = 'number' THEN
        v_number := (v_value #>> '{}')::numeric;
      END IF;
      IF v_number IS NULL OR v_number <> trunc(v_number) THEN
        RAISE EXCEPTION 'option % must be a whole number from % to %, got %', v_spec.option, v_spec.min_value,
          v_spec.max_value, v_value USING ERRCODE = 'SR004';
      END IF;
      IF v_number NOT BETWEEN v_spec.min_value AND v_spec.max_value THEN
        RAISE EXCEPTION 'option % must be a whole number from % to %, got %: out of range', v_spec.option,
          v_spec.min_value, v_spec.max_value, v_value USING ERRCODE = 'SR004';
      END IF;
      v_value := to_jsonb(v_number);
    WHEN 'duration' THEN
      -- seconds (a JSON number, or a numeric text such as '3600' or '1e10'),
      -- or an interval text such as '2 hours'. Values past what an interval
      -- or a bigint holds, and infinity, are out of range, not malformed.
      v_text := v_value #>> '{}';
      BEGIN
        v_number := CASE
          WHEN jsonb_typeof(v_value) = 'number' THEN v_text::numeric
          WHEN jsonb_typeof(v_value) <> 'string' THEN NULL
          WHEN v_text ~* '^\s*[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?\s*$' THEN v_text::numeric
          WHEN v_text ~* '^\s*[+-]?infinity\s*$' THEN 'Infinity'::numeric
          ELSE extract(epoch FROM v_text::interval)
        END;
      EXCEPTION
        WHEN datetime_field_overflow OR interval_field_overflow OR numeric_value_out_of_range THEN
          v_number := 'Infinity'::numeric;
        WHEN invalid_datetime_format OR invalid_text_representation OR syntax_error THEN
          v_number := NULL;
      END;
      IF v_number IS NULL THEN
        RAISE EXCEPTION 'option % must be a number of seconds or an interval such as ''2 hours'', got %',
          v_spec.option, v_value USING ERRCODE = 'SR004';
      END IF;
      IF v_number = 'Infinity'::numeric OR v_number = '-Infinity'::numeric
         OR ceil(v_number) NOT BETWEEN v_spec.min_value AND v_spec.max_value THEN
        RAISE EXCEPTION 'option % must be from % to % seconds, got %: out of range', v_spec.option,
          v_spec.min_value, v_spec.max_value, v_value
          USING ERRCODE = 'SR004', HINT = format('at most %s; leave %s out for %s',
            CASE WHEN v_spec.max_value = 31536000 THEN 'a year (''1 year'')' ELSE v_spec.max_value || ' seconds' END, v_spec.option,
            CASE WHEN v_spec.default_value = 'null' THEN 'no limit' ELSE 'the default, ' || (v_spec.default_value #>> '{}') || ' seconds' END);
      END IF;
      v_value := to_jsonb(ceil(v_number)::bigint);
    WHEN 'bytes' THEN
      -- a whole number of bytes, or a size such as '1GB' (pg_size_bytes);
      -- past a bigint is out of range, not malformed
      v_text := v_value #>> '{}';
      BEGIN
        v_number := CASE
          WHEN jsonb_typeof(v_value) = 'number' THEN v_text::numeric
          WHEN jsonb_typeof(v_value) <> 'string' THEN NULL
          WHEN v_text ~* '^\s*[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?\s*$' THEN v_text::numeric
          ELSE pg_size_bytes(v_text)
        END;
      EXCEPTION
        WHEN numeric_value_out_of_range THEN
          v_number := 'Infinity'::numeric;
        WHEN invalid_parameter_value OR invalid_text_representation THEN
          v_number := NULL;
      END;
      IF v_number IS NULL OR (v_number <> 'Infinity'::numeric AND v_number <> trunc(v_number)) THEN
        RAISE EXCEPTION 'option % must be a whole number of bytes (or a size such as ''64MB'') from % to %, got %',
          v_spec.option, v_spec.min_value, v_spec.max_value, v_value USING ERRCODE = 'SR004';
      END IF;
      IF v_number = 'Infinity'::numeric OR v_number NOT BETWEEN v_spec.min_value AND v_spec.max_value THEN
        RAISE EXCEPTION 'option % must be from % to % bytes (%), got %: out of range', v_spec.option,
          v_spec.min_value, v_spec.max_value, pg_size_pretty(v_spec.max_value::numeric), v_value USING ERRCODE = 'SR004';
      END IF;
      v_value := to_jsonb(v_number::bigint);
    END CASE;
    v_result := v_result || jsonb_build_object(v_spec.option, v_value);
  END LOOP;
  RETURN v_result;
END $$;
