-- numeric(10,2) -> numeric, character varying(10)[] -> character varying[],
-- timestamp(3) with time zone -> timestamp with time zone.
CREATE OR REPLACE FUNCTION steep_repl.type_without_modifiers(p_type text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT regexp_replace(p_type, '\([0-9, ]*\)', '', 'g')
$$;
