-- The tables a subscription of this database receives (pg_subscription_rel),
-- with their sync state ('r' once ready). A partitioned table published
-- through its root is one row, the root.
CREATE OR REPLACE FUNCTION steep_repl.subscription_tables(p_subscription text)
RETURNS TABLE (relid oid, schema_name text, table_name text, label text, sync_state text)
LANGUAGE sql STABLE AS $$
  SELECT c.oid, n.nspname::text, c.relname::text, format('%I.%I', n.nspname, c.relname), r.srsubstate::text
  FROM pg_catalog.pg_subscription s
  JOIN pg_catalog.pg_subscription_rel r ON r.srsubid = s.oid
  JOIN pg_catalog.pg_class c ON c.oid = r.srrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
    AND s.subname = p_subscription
  ORDER BY 2, 3
$$;
