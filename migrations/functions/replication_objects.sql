-- The steep-repl replication objects this database holds for the pairs
-- between its local node and p_node_id (every peer when p_node_id is NULL
-- or the local node): the subscriptions it streams from a peer through
-- (by the pair's name, or the oid its init recorded), the publications and
-- slots a peer streams from, and the slots it prepared for a peer's later
-- init (init_slots). What a peer's own database holds is for that database
-- to say: node detach asks every side. Each row carries the statement that
-- removes the object by hand.
CREATE OR REPLACE FUNCTION steep_repl.replication_objects(p_node_id text DEFAULT NULL)
RETURNS TABLE (kind text, name text, peer_node text, direction text, drop_statement text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_local text := steep_repl.local_node_id();
  v_all boolean := p_node_id IS NULL OR p_node_id = v_local;
BEGIN
  IF v_local IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY
  WITH peers AS (
    SELECT n.node_id FROM steep_repl.nodes n
     WHERE n.node_id <> v_local AND (v_all OR n.node_id = p_node_id)
  ), recorded AS (
    SELECT s.subscription_oid, l.init_source_node
      FROM steep_repl.init_method_state s JOIN steep_repl.nodes l ON l.node_id = s.node_id
     WHERE s.node_id = v_local AND s.subscription_oid IS NOT NULL
  )
  SELECT 'subscription', sub.subname::text, p.node_id, 'from', format('DROP SUBSCRIPTION %I', sub.subname)
    FROM pg_subscription sub
    JOIN peers p ON sub.subname = steep_repl.replication_name(p.node_id, v_local)
                 OR sub.oid IN (SELECT r.subscription_oid FROM recorded r WHERE r.init_source_node = p.node_id)
   WHERE sub.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  UNION ALL
  SELECT 'publication', pub.pubname::text, p.node_id, 'to', format('DROP PUBLICATION %I', pub.pubname)
    FROM pg_publication pub JOIN peers p ON pub.pubname = steep_repl.replication_name(v_local, p.node_id);
  -- Slots: a prepared one (init_slots) is named so, whatever its name.
  IF to_regclass('steep_repl.init_slots') IS NULL THEN
    RETURN QUERY
    SELECT 'slot', sl.slot_name::text, p.node_id, 'to', format('SELECT pg_drop_replication_slot(%L)', sl.slot_name)
      FROM pg_replication_slots sl
      JOIN steep_repl.nodes p ON p.node_id <> v_local AND (v_all OR p.node_id = p_node_id)
                             AND sl.slot_name = steep_repl.replication_name(v_local, p.node_id)
     WHERE sl.database = current_database();
  ELSE
    RETURN QUERY EXECUTE
      $q$SELECT CASE WHEN s.slot_name IS NULL THEN 'slot' ELSE 'prepared slot' END, sl.slot_name::text,
                coalesce(s.for_node, p.node_id), 'to', format('SELECT pg_drop_replication_slot(%L)', sl.slot_name)
           FROM pg_replication_slots sl
           LEFT JOIN steep_repl.init_slots s ON s.slot_name = sl.slot_name
           LEFT JOIN steep_repl.nodes p ON p.node_id <> $1 AND sl.slot_name = steep_repl.replication_name($1, p.node_id)
          WHERE sl.database = current_database()
            AND (s.slot_name IS NOT NULL AND s.for_node <> $1 OR p.node_id IS NOT NULL)
            AND ($2 OR coalesce(s.for_node, p.node_id) = $3)$q$
      USING v_local, v_all, p_node_id;
  END IF;
END $$;
