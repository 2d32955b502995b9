-- A user type as table_fingerprints records it (a column's "types"), in
-- words for a difference: enum ('a', 'b'), domain over integer NOT NULL
-- CHECK (...), composite (x integer, y text), range over numeric. With
-- p_kind false an enum is only its labels.
CREATE OR REPLACE FUNCTION steep_repl.user_type_description(p_type jsonb, p_kind boolean DEFAULT true)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE p_type ->> 'kind'
    WHEN 'enum' THEN CASE WHEN p_kind THEN 'enum ' ELSE '' END
                     || '(' || coalesce((SELECT string_agg(quote_literal(l), ', ' ORDER BY o)
                                           FROM jsonb_array_elements_text(p_type -> 'labels') WITH ORDINALITY x(l, o)), '') || ')'
    WHEN 'domain' THEN concat_ws(' ', 'domain over ' || (p_type ->> 'base'),
                                 'DEFAULT ' || (p_type ->> 'default'),
                                 CASE WHEN (p_type ->> 'not_null')::boolean THEN 'NOT NULL' END,
                                 (SELECT string_agg(c, ' ' ORDER BY c) FROM jsonb_array_elements_text(p_type -> 'constraints') c))
    WHEN 'composite' THEN 'composite (' || coalesce((SELECT string_agg(a, ', ' ORDER BY o)
                                                      FROM jsonb_array_elements_text(p_type -> 'attributes') WITH ORDINALITY x(a, o)), '') || ')'
    WHEN 'range' THEN 'range over ' || (p_type ->> 'subtype')
    ELSE 'not an enum, domain, composite or range type'
  END
$$;
