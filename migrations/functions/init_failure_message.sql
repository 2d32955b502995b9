-- The message a failed init records: what went wrong, what the retry keeps
-- (looked up, not assumed) and how to go on. p_failure: {error, kind, hint}
-- with kind connection | timeout | schema_mismatch | error.
CREATE OR REPLACE FUNCTION steep_repl.init_failure_message(p_node_id text, p_failure jsonb) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE p_failure ->> 'kind'
           WHEN 'connection' THEN format('%s. %s; once the source accepts connections again, %s', p_failure ->> 'error',
             CASE WHEN sub.subname IS NOT NULL
                  THEN format('The subscription %s, its slot and the publication on the source are kept', sub.subname)
                  ELSE 'Nothing was created on the source yet' END,
             steep_repl.init_resume_hint(p_node_id))
           WHEN 'timeout' THEN format('%s; %s', p_failure ->> 'error', steep_repl.init_resume_hint(p_node_id))
           ELSE (p_failure ->> 'error') || coalesce(' (' || (p_failure ->> 'hint') || ')', '')
         END
  FROM (SELECT 1) one
  LEFT JOIN steep_repl.init_method_state s ON s.node_id = p_node_id
  LEFT JOIN pg_catalog.pg_subscription sub
         ON sub.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
        AND (sub.oid = s.subscription_oid OR sub.subname = s.replication_name)
  LIMIT 1
$$;
