-- ALTER TABLE cannot put a column anywhere but last, nor turn a plain
-- column into a generated one: such tables are rebuilt instead.
CREATE OR REPLACE FUNCTION steep_repl.needs_rebuild(p_source jsonb, p_target jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  WITH sc AS (SELECT c, c ->> 'name' AS name, o FROM jsonb_array_elements(p_source -> 'columns') WITH ORDINALITY x(c, o)),
       tc AS (SELECT c, c ->> 'name' AS name, o FROM jsonb_array_elements(p_target -> 'columns') WITH ORDINALITY x(c, o))
  SELECT ARRAY(SELECT name FROM sc ORDER BY o)
           IS DISTINCT FROM
         ARRAY(SELECT tc.name FROM tc WHERE EXISTS (SELECT 1 FROM sc WHERE sc.name = tc.name) ORDER BY tc.o)
           || ARRAY(SELECT sc.name FROM sc WHERE NOT EXISTS (SELECT 1 FROM tc WHERE tc.name = sc.name) ORDER BY sc.o)
      -- a partitioned table and a plain one both receive the rows: neither is rebuilt into the other
      OR replace(coalesce(p_source -> 'table_facts' ->> 'kind', 'table'), 'partitioned', 'table')
         <> replace(coalesce(p_target -> 'table_facts' ->> 'kind', 'table'), 'partitioned', 'table')
      OR EXISTS (SELECT 1 FROM sc JOIN tc ON tc.name = sc.name
                  WHERE coalesce(sc.c -> 'generated_kind', 'null') <> coalesce(tc.c -> 'generated_kind', 'null'))
$$;
