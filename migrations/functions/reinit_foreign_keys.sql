-- A reinit empties its tables on the node: a table it keeps whose foreign
-- key references one of them (or a partition of one) would make the TRUNCATE
-- fail, and TRUNCATE ... CASCADE would empty a table nobody named. Refused
-- here naming each such constraint and the table to add (SR004). Keys
-- between re-copied tables, and from them to kept ones, are fine: they are
-- emptied together, and the copy runs as replication (no FK triggers).
CREATE OR REPLACE FUNCTION steep_repl.reinit_foreign_keys(p_node text, p_relids oid[])
RETURNS void LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_refs text;
  v_add text;
BEGIN
  WITH keys AS (
    -- partitions carry copies of a partitioned table's key: named once, by their roots
    SELECT DISTINCT c.conname, coalesce(pg_partition_root(c.conrelid), c.conrelid) AS referencing,
           coalesce(pg_partition_root(c.confrelid), c.confrelid) AS referenced
      FROM pg_catalog.pg_constraint c
     WHERE c.contype = 'f' AND c.conparentid = 0
       AND coalesce(pg_partition_root(c.confrelid), c.confrelid) = ANY (p_relids)
       AND NOT coalesce(pg_partition_root(c.conrelid), c.conrelid) = ANY (p_relids)
  ), named AS (
    SELECT k.conname, format('%I.%I', rn.nspname, r.relname) AS referencing, format('%I.%I', dn.nspname, d.relname) AS referenced
      FROM keys k
      JOIN pg_catalog.pg_class r ON r.oid = k.referencing JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
      JOIN pg_catalog.pg_class d ON d.oid = k.referenced JOIN pg_catalog.pg_namespace dn ON dn.oid = d.relnamespace
  )
  SELECT string_agg(format('foreign key %I of %s references %s', n.conname, n.referencing, n.referenced), '; ' ORDER BY n.referencing, n.conname),
         string_agg(DISTINCT n.referencing, ', ')
    INTO v_refs, v_add
    FROM named n;
  IF v_refs IS NOT NULL THEN
    RAISE EXCEPTION 'node % keeps tables that reference tables the reinit would empty: %', quote_ident(p_node), v_refs
      USING ERRCODE = 'SR004',
            HINT = format('add %s to the reinit (a TRUNCATE ... CASCADE would empty them without being asked), or drop those constraints first', v_add);
  END IF;
END $$;
