-- One option's value checked against its spec (a row of init_option_specs,
-- or one made in place by snapshot_options) and normalized: a whole number,
-- seconds, bytes, or the text itself. A value that does not fit is refused
-- with the option's name, what it must be and what was given (SR004).
CREATE OR REPLACE FUNCTION steep_repl.option_value(p_spec steep_repl.init_option_specs, p_value jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_spec steep_repl.init_option_specs := p_spec;
  v_value jsonb := p_value;
  v_number numeric;
  v_text text;
BEGIN
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
  WHEN 'text' THEN
    IF jsonb_typeof(v_value) <> 'string' OR (v_value #>> '{}') !~ v_spec.pattern THEN
      RAISE EXCEPTION 'option % must be %, got %', v_spec.option, v_spec.expected,
        CASE WHEN octet_length(v_value::text) > 200 THEN left(v_value::text, 200) || '...' ELSE v_value::text END
        USING ERRCODE = 'SR004';
    END IF;
  END CASE;
  RETURN v_value;
END $$;
