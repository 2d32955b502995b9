-- The difference entry of a NOT_REPLICATED relation: the source's reason
-- (not_replicated_reason), what it means and what to do.
CREATE OR REPLACE FUNCTION steep_repl.not_replicated_difference(p_schema text, p_table text, p_reason text, p_on_target boolean)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object(
    'kind', 'not_replicated',
    'reason', p_reason,
    'on_target', p_on_target,
    'detail', format('%s: logical replication cannot carry its rows (%s); %s', p_reason,
      CASE WHEN p_reason = 'unlogged table' THEN 'its changes are not written to the WAL'
           WHEN p_reason = 'foreign table' THEN 'they live on another server'
           WHEN p_reason = 'materialized view' THEN 'it is computed, not written'
           ELSE 'that partition''s changes are not replicated' END,
      CASE WHEN p_reason = 'unlogged table' THEN format('to replicate it: ALTER TABLE %I.%I SET LOGGED on the source', p_schema, p_table)
           WHEN p_reason = 'foreign table' THEN 'create it on the target yourself (CREATE FOREIGN TABLE or IMPORT FOREIGN SCHEMA there)'
           WHEN p_reason = 'materialized view' THEN 'create it on the target and REFRESH MATERIALIZED VIEW there'
           ELSE 'to replicate it: ALTER TABLE ... SET LOGGED on that partition on the source, or detach it' END))
$$;
