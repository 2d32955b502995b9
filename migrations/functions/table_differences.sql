-- Per column and per key, how the target's table differs from the
-- source's. p_source and p_target are fingerprint rows as JSON.
CREATE OR REPLACE FUNCTION steep_repl.table_differences(p_source jsonb, p_target jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
WITH sc AS (
  SELECT c, c ->> 'name' AS name, o FROM jsonb_array_elements(p_source -> 'columns') WITH ORDINALITY x(c, o)
), tc AS (
  SELECT c, c ->> 'name' AS name, o FROM jsonb_array_elements(p_target -> 'columns') WITH ORDINALITY x(c, o)
), pairs AS (
  SELECT coalesce(sc.name, tc.name) AS name, sc.c AS s, tc.c AS t, sc.o AS so, tc.o AS t_o,
         coalesce(sc.o, 100000 + tc.o) AS sort
    FROM sc FULL JOIN tc ON tc.name = sc.name
), common AS (
  SELECT name, s, t, sort, row_number() OVER (ORDER BY so) AS s_rank, row_number() OVER (ORDER BY t_o) AS t_rank
    FROM pairs WHERE s IS NOT NULL AND t IS NOT NULL
), d(sort, diff) AS (
  SELECT sort, jsonb_build_object('kind', 'column_missing', 'column', name, 'source', s, 'target', NULL,
           'detail', format('column %I %s is missing on the target', name, s ->> 'type'))
    FROM pairs WHERE t IS NULL
  UNION ALL
  SELECT sort, jsonb_build_object('kind', 'column_extra', 'column', name, 'source', NULL, 'target', t,
           'detail', format('column %I %s exists on the target only', name, t ->> 'type'))
    FROM pairs WHERE s IS NULL
  UNION ALL
  SELECT sort, jsonb_build_object('kind', 'column_type', 'column', name, 'source', s -> 'type', 'target', t -> 'type',
           'detail', format('column %I type differs: source %s, target %s', name, s ->> 'type', t ->> 'type'))
    FROM common WHERE s -> 'type' <> t -> 'type'
  UNION ALL
  SELECT sort, jsonb_build_object('kind', 'column_collation', 'column', name, 'source', s -> 'collation', 'target', t -> 'collation',
           'detail', format('column %I collation differs: source %s, target %s', name,
                            coalesce(s ->> 'collation', 'default'), coalesce(t ->> 'collation', 'default')))
    FROM common WHERE coalesce(s -> 'collation', 'null') <> coalesce(t -> 'collation', 'null')
  UNION ALL
  SELECT sort, jsonb_build_object('kind', 'column_default', 'column', name, 'source', s -> 'default', 'target', t -> 'default',
           'detail', CASE WHEN t ->> 'default' IS NULL THEN format('column %I has default %s on the source, none on the target', name, s ->> 'default')
                          WHEN s ->> 'default' IS NULL THEN format('column %I has default %s on the target, none on the source', name, t ->> 'default')
                          ELSE format('column %I default differs: source %s, target %s', name, s ->> 'default', t ->> 'default') END)
    FROM common WHERE coalesce(s -> 'default', 'null') <> coalesce(t -> 'default', 'null')
  UNION ALL
  SELECT sort, jsonb_build_object('kind', 'column_nullability', 'column', name, 'source', s -> 'not_null', 'target', t -> 'not_null',
           'detail', CASE WHEN (s ->> 'not_null')::boolean THEN format('column %I is NOT NULL on the source, nullable on the target', name)
                          ELSE format('column %I is nullable on the source, NOT NULL on the target', name) END)
    FROM common WHERE s -> 'not_null' <> t -> 'not_null'
  UNION ALL
  SELECT sort, jsonb_build_object('kind', 'column_identity', 'column', name, 'source', s -> 'identity', 'target', t -> 'identity',
           'detail', format('column %I identity differs: source %s, target %s', name,
                            coalesce('GENERATED ' || upper(s ->> 'identity') || ' AS IDENTITY', 'none'),
                            coalesce('GENERATED ' || upper(t ->> 'identity') || ' AS IDENTITY', 'none')))
    FROM common WHERE coalesce(s -> 'identity', 'null') <> coalesce(t -> 'identity', 'null')
  UNION ALL
  SELECT sort, jsonb_build_object('kind', 'column_generated', 'column', name,
           'source', jsonb_build_object('expression', s -> 'generated', 'kind', s -> 'generated_kind'),
           'target', jsonb_build_object('expression', t -> 'generated', 'kind', t -> 'generated_kind'),
           'detail', format('column %I generated expression differs: source %s, target %s', name,
                            coalesce(format('(%s) %s', s ->> 'generated', upper(s ->> 'generated_kind')), 'none'),
                            coalesce(format('(%s) %s', t ->> 'generated', upper(t ->> 'generated_kind')), 'none')))
    FROM common
   WHERE coalesce(s -> 'generated', 'null') <> coalesce(t -> 'generated', 'null')
      OR coalesce(s -> 'generated_kind', 'null') <> coalesce(t -> 'generated_kind', 'null')
  UNION ALL
  -- the same type name, defined differently on the two nodes
  SELECT sort, jsonb_build_object('kind', 'column_user_type', 'column', name, 'type', k,
           'source', s -> 'types' -> k, 'target', t -> 'types' -> k,
           'detail', CASE WHEN s -> 'types' -> k ->> 'kind' = 'enum' AND t -> 'types' -> k ->> 'kind' = 'enum'
                          THEN format('column %I: type %s labels differ: source %s, target %s', name, k,
                                      steep_repl.user_type_description(s -> 'types' -> k, false),
                                      steep_repl.user_type_description(t -> 'types' -> k, false))
                          ELSE format('column %I: type %s differs: source %s, target %s', name, k,
                                      steep_repl.user_type_description(s -> 'types' -> k, true),
                                      steep_repl.user_type_description(t -> 'types' -> k, true)) END)
    FROM common
   CROSS JOIN LATERAL (SELECT DISTINCT x.k FROM jsonb_object_keys(coalesce(s -> 'types', '{}') || coalesce(t -> 'types', '{}')) x(k)) keys
   WHERE s -> 'type' = t -> 'type'
     AND coalesce(s -> 'types' -> k, 'null') <> coalesce(t -> 'types' -> k, 'null')
  UNION ALL
  SELECT 200000, jsonb_build_object('kind', 'column_order',
           'source', (SELECT jsonb_agg(name ORDER BY s_rank) FROM common),
           'target', (SELECT jsonb_agg(name ORDER BY t_rank) FROM common),
           'detail', format('column order differs: source %s, target %s',
                            steep_repl.ident_list((SELECT jsonb_agg(name ORDER BY s_rank) FROM common)),
                            steep_repl.ident_list((SELECT jsonb_agg(name ORDER BY t_rank) FROM common))))
   WHERE EXISTS (SELECT 1 FROM common WHERE s_rank <> t_rank)
  UNION ALL
  SELECT 200001, jsonb_build_object('kind', 'primary_key',
           'source', p_source -> 'table_facts' -> 'primary_key', 'target', p_target -> 'table_facts' -> 'primary_key',
           'detail', format('primary key differs: source %s, target %s',
                            steep_repl.ident_list(p_source -> 'table_facts' -> 'primary_key'),
                            steep_repl.ident_list(p_target -> 'table_facts' -> 'primary_key')))
   WHERE coalesce(p_source -> 'table_facts' -> 'primary_key', 'null') <> coalesce(p_target -> 'table_facts' -> 'primary_key', 'null')
  UNION ALL
  SELECT 200002, jsonb_build_object('kind', 'replica_identity',
           'source', jsonb_build_object('mode', p_source -> 'table_facts' -> 'replica_identity', 'columns', p_source -> 'table_facts' -> 'replica_identity_columns'),
           'target', jsonb_build_object('mode', p_target -> 'table_facts' -> 'replica_identity', 'columns', p_target -> 'table_facts' -> 'replica_identity_columns'),
           'detail', format('replica identity differs: source %s%s, target %s%s',
                            p_source -> 'table_facts' ->> 'replica_identity',
                            CASE WHEN p_source -> 'table_facts' ->> 'replica_identity' = 'index'
                                 THEN ' ' || steep_repl.ident_list(p_source -> 'table_facts' -> 'replica_identity_columns') ELSE '' END,
                            p_target -> 'table_facts' ->> 'replica_identity',
                            CASE WHEN p_target -> 'table_facts' ->> 'replica_identity' = 'index'
                                 THEN ' ' || steep_repl.ident_list(p_target -> 'table_facts' -> 'replica_identity_columns') ELSE '' END))
   WHERE coalesce(p_source -> 'table_facts' -> 'replica_identity', 'null') <> coalesce(p_target -> 'table_facts' -> 'replica_identity', 'null')
      OR coalesce(p_source -> 'table_facts' -> 'replica_identity_columns', 'null') <> coalesce(p_target -> 'table_facts' -> 'replica_identity_columns', 'null')
  UNION ALL
  -- plain and partitioned tables both receive rows (through the root): only
  -- a foreign table or a materialized view is another kind
  SELECT 200003, jsonb_build_object('kind', 'table_kind',
           'source', p_source -> 'table_facts' -> 'kind', 'target', p_target -> 'table_facts' -> 'kind',
           'detail', format('table kind differs: source %s, target %s',
                            p_source -> 'table_facts' ->> 'kind', p_target -> 'table_facts' ->> 'kind'))
   WHERE replace(coalesce(p_source -> 'table_facts' ->> 'kind', 'table'), 'partitioned', 'table')
      <> replace(coalesce(p_target -> 'table_facts' ->> 'kind', 'table'), 'partitioned', 'table')
  UNION ALL
  SELECT 200004, jsonb_build_object('kind', 'table_persistence',
           'source', NULL, 'target', p_target -> 'table_facts' -> 'not_replicated',
           'detail', format('on the target it is an %s (a crash of the target server empties it, and what it receives is not replicated on): ALTER TABLE ... SET LOGGED on the target',
                            p_target -> 'table_facts' ->> 'not_replicated'))
   WHERE p_source -> 'table_facts' ->> 'not_replicated' IS NULL
     AND p_target -> 'table_facts' ->> 'not_replicated' IS NOT NULL
     AND coalesce(p_target -> 'table_facts' ->> 'kind', 'table') IN ('table', 'partitioned')
)
SELECT coalesce(jsonb_agg(diff ORDER BY sort), '[]') FROM d
$$;
