-- The publication a prepared slot's row named, once that row is gone:
-- dropped when no other prepared slot names it and no snapshot that still
-- lives (generating, ready) owns it; its expiry or delete drops a
-- snapshot's own. Returns whether it was dropped.
CREATE OR REPLACE FUNCTION steep_repl.release_slot_publication(p_publication text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  IF p_publication IS NULL
     OR EXISTS (SELECT 1 FROM steep_repl.init_slots WHERE publication = p_publication)
     OR EXISTS (SELECT 1 FROM steep_repl.snapshots WHERE publication = p_publication AND state IN ('generating', 'ready'))
     OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = p_publication) THEN
    RETURN false;
  END IF;
  EXECUTE format('DROP PUBLICATION %I', p_publication);
  RETURN true;
END $$;
