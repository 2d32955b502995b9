-- Run on any node: where this database receives changes from, one row per
-- subscription in it. from_node is the registered node a steep-repl
-- subscription streams from (its name is replication_name(node, this
-- node)); NULL for one made by hand or by another tool, which counts as an
-- upstream all the same. origin: 'none' (only the publisher's own changes)
-- or 'any' (what the publisher received from others too); PostgreSQL 15 has
-- no such option and sends everything, so 'any'.
CREATE OR REPLACE FUNCTION steep_repl.upstream_subscriptions()
RETURNS TABLE (subscription text, from_node text, origin text, enabled boolean)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  -- suborigin exists from 16 on; subconninfo is not readable by everyone,
  -- so the columns are named rather than taken as a whole row.
  RETURN QUERY EXECUTE format(
    $q$SELECT s.subname::text, n.node_id, %s, s.subenabled
       FROM pg_catalog.pg_subscription s
       LEFT JOIN steep_repl.nodes n ON n.node_id IS DISTINCT FROM steep_repl.local_node_id()
                                   AND steep_repl.replication_name(n.node_id, steep_repl.local_node_id()) = s.subname
       WHERE s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
       ORDER BY 1$q$,
    CASE WHEN current_setting('server_version_num')::int >= 160000 THEN 's.suborigin::text' ELSE '''any''::text' END);
END $$;
