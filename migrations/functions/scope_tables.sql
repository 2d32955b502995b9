-- The tables of a subscription that a scope names, for verify and reinit
-- (pick_tables reads the scope). p_context says in messages what the
-- subscription is, e.g. 'node b receives from node a'.
CREATE OR REPLACE FUNCTION steep_repl.scope_tables(p_subscription text, p_scope jsonb DEFAULT '{}', p_context text DEFAULT NULL)
RETURNS TABLE (schema_name text, table_name text, label text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN QUERY
    SELECT p.schema_name, p.table_name, p.label
      FROM steep_repl.pick_tables(
             (SELECT coalesce(jsonb_agg(jsonb_build_object('schema_name', t.schema_name, 'table_name', t.table_name, 'label', t.label)), '[]')
                FROM steep_repl.subscription_tables(p_subscription) t),
             p_scope, coalesce(p_context, format('subscription %I receives', p_subscription))) p;
END $$;
