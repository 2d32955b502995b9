-- A start_merge option's spec, made in place for option_value (the init's
-- specs table holds the init's options only).
CREATE OR REPLACE FUNCTION steep_repl.merge_option_spec(p_option text, p_kind text) RETURNS steep_repl.init_option_specs
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_populate_record(NULL::steep_repl.init_option_specs, jsonb_build_object(
    'option', p_option, 'kind', p_kind, 'description', 'merge option ' || p_option,
    'choices', CASE WHEN p_kind = 'choice' THEN ARRAY['prefer-a', 'prefer-b', 'last-modified', 'manual'] END,
    'min_value', CASE WHEN p_kind = 'duration' THEN 1 END,
    'max_value', CASE WHEN p_kind = 'duration' THEN 86400 END,
    'default_value', CASE WHEN p_kind = 'duration' THEN '3600'::jsonb END))
$$;
