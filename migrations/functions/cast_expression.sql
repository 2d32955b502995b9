-- How a column's values become the source's type: an assignment cast when
-- only the modifiers differ (errors rather than truncates), an explicit cast
-- otherwise, wrapping into or taking the first element of an array.
CREATE OR REPLACE FUNCTION steep_repl.cast_expression(p_source jsonb, p_target jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN steep_repl.type_without_modifiers(p_source ->> 'type') = steep_repl.type_without_modifiers(p_target ->> 'type')
                THEN format('%I', p_source ->> 'name')
              WHEN p_source ->> 'type' LIKE '%]' AND p_target ->> 'type' NOT LIKE '%]'
                THEN format('ARRAY[%I]::%s', p_source ->> 'name', p_source ->> 'type')
              WHEN p_target ->> 'type' LIKE '%]' AND p_source ->> 'type' NOT LIKE '%]'
                THEN format('(%I)[1]::%s', p_source ->> 'name', p_source ->> 'type')
              ELSE format('%I::%s', p_source ->> 'name', p_source ->> 'type') END
$$;
