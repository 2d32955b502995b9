-- The exported snapshot is gone: the parts of every table not complete on
-- it go to PostgreSQL's table sync (state resync). Returns those tables.
CREATE OR REPLACE FUNCTION steep_repl.resync_init_parts(p_node_id text)
RETURNS TABLE (schema_name text, table_name text) LANGUAGE sql AS $$
  WITH incomplete AS (
    SELECT p.schema_name, p.table_name FROM steep_repl.init_parts p
    WHERE p.node_id = p_node_id
    GROUP BY 1, 2 HAVING bool_or(p.state <> 'done')
  ), moved AS (
    UPDATE steep_repl.init_parts p SET state = 'resync', worker = NULL
    FROM incomplete i
    WHERE p.node_id = p_node_id AND p.schema_name = i.schema_name AND p.table_name = i.table_name AND p.state <> 'resynced'
    RETURNING p.schema_name, p.table_name
  )
  SELECT DISTINCT m.schema_name, m.table_name FROM moved m
  UNION
  SELECT DISTINCT p.schema_name, p.table_name FROM steep_repl.init_parts p WHERE p.node_id = p_node_id AND p.state = 'resync'
  ORDER BY 1, 2
$$;
