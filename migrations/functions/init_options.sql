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
    v_result := v_result || jsonb_build_object(v_spec.option, steep_repl.option_value(v_spec, v_value));
  END LOOP;
  RETURN v_result;
END $$;
