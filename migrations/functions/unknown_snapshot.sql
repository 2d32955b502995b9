-- A snapshot id this database has no row for: named, with the ones it has
-- (the latest ten). Snapshots are recorded on the node they were generated on.
CREATE OR REPLACE FUNCTION steep_repl.unknown_snapshot(p_snapshot_id text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'unknown snapshot %', quote_nullable(p_snapshot_id)
    USING ERRCODE = 'SR001',
          HINT = coalesce('snapshots generated on this node: '
                          || (SELECT string_agg(s.snapshot_id || ' (' || s.state || ')', ', ' ORDER BY s.created_at DESC)
                                FROM (SELECT * FROM steep_repl.snapshots ORDER BY created_at DESC LIMIT 10) s),
                          'no snapshot was generated on this node; a snapshot is recorded on the database of the source it was generated on '
                          || '(steep-repl snapshot list <source>)');
END $$;
