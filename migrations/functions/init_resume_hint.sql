-- What a DBA runs after a failed initialization: resume it (CLI and SQL) or
-- remove what it created. The one text every failure and refusal shows.
CREATE OR REPLACE FUNCTION steep_repl.init_resume_hint(p_node_id text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT format('resume with: steep-repl node start %s --from %s --resume (SQL: SELECT steep_repl.start_init(%L, %L, %L, ''{"resume": true}'')), '
                || 'or remove what it created with: steep-repl node cancel %s',
                steep_repl.shell_word(n.node_id), steep_repl.shell_word(n.init_source_node),
                n.node_id, n.init_source_node, coalesce(p.method, 'snapshot'), steep_repl.shell_word(n.node_id))
  FROM steep_repl.nodes n LEFT JOIN steep_repl.init_progress p ON p.node_id = n.node_id
  WHERE n.node_id = p_node_id
$$;
