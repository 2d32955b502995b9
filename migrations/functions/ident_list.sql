CREATE OR REPLACE FUNCTION steep_repl.ident_list(p_names jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_names IS NULL OR jsonb_typeof(p_names) <> 'array' THEN 'none'
              ELSE '(' || coalesce((SELECT string_agg(quote_ident(x), ', ' ORDER BY o)
                                     FROM jsonb_array_elements_text(p_names) WITH ORDINALITY y(x, o)), '') || ')' END
$$;
