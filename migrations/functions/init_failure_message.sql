-- The message a failed init records: what went wrong, what exists now on
-- each side (looked up here on the target; on the source as the agent found
-- it, or said to be unchecked) and how to go on. p_failure: {error, kind,
-- hint, on_source} with kind connection | timeout | schema_mismatch | error
-- and on_source {checked, objects: [{kind, name}], error, may_exist: [...]}.
-- Without on_source the source was not looked at, and the message says so.
CREATE OR REPLACE FUNCTION steep_repl.init_failure_message(p_node_id text, p_failure jsonb) RETURNS text
LANGUAGE sql STABLE AS $$
  WITH facts AS (
    SELECT sub.subname, sub.subenabled, n.init_source_node AS source_node,
           coalesce((p_failure -> 'on_source' ->> 'checked')::boolean, false) AS checked,
           (SELECT string_agg(format('the %s %s', o ->> 'kind', o ->> 'name'), ' and ')
              FROM jsonb_array_elements(coalesce(p_failure -> 'on_source' -> 'objects', '[]')) o) AS on_source,
           coalesce((SELECT string_agg(format('the %s %s', o ->> 'kind', o ->> 'name'), ' and ')
                       FROM jsonb_array_elements(p_failure -> 'on_source' -> 'may_exist') o),
                    format('the publication %s and its slot', s.replication_name)) AS may_exist
    FROM (SELECT 1) one
    LEFT JOIN steep_repl.nodes n ON n.node_id = p_node_id
    LEFT JOIN steep_repl.init_method_state s ON s.node_id = p_node_id
    LEFT JOIN pg_catalog.pg_subscription sub
           ON sub.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
          AND (sub.oid = s.subscription_oid OR sub.subname = s.replication_name)
    LIMIT 1
  ), kept AS (
    SELECT format('%s %s',
             CASE WHEN subname IS NOT NULL
                    THEN format('The subscription %s%s is kept on this node.', subname, CASE WHEN subenabled THEN '' ELSE ' (disabled)' END)
                  ELSE 'No subscription exists on this node.' END,
             CASE WHEN checked AND on_source IS NOT NULL
                    THEN format('On source node %s, %s exist%s, kept for the resume.', source_node, on_source,
                                CASE WHEN jsonb_array_length(p_failure -> 'on_source' -> 'objects') > 1 THEN '' ELSE 's' END)
                  WHEN checked THEN format('Nothing of this init exists on source node %s (checked).', source_node)
                  ELSE format('Source node %s could not be checked%s; %s may exist there and are kept for the resume.',
                              source_node, coalesce(' (' || (p_failure -> 'on_source' ->> 'error') || ')', ''), may_exist)
             END) AS sentence
    FROM facts
  )
  SELECT CASE p_failure ->> 'kind'
           WHEN 'connection' THEN format('%s. %s %s', p_failure ->> 'error', kept.sentence,
             CASE WHEN p_failure ->> 'hint' IS NOT NULL THEN format('To go on: %s; %s', p_failure ->> 'hint', steep_repl.init_resume_hint(p_node_id))
                  ELSE format('Once the source accepts connections again, %s', steep_repl.init_resume_hint(p_node_id)) END)
           WHEN 'timeout' THEN format('%s; %s', p_failure ->> 'error', steep_repl.init_resume_hint(p_node_id))
           ELSE (p_failure ->> 'error') || coalesce(' (' || (p_failure ->> 'hint') || ')', '')
         END
  FROM kept
$$;
