-- A snapshot's row announces itself on steep_repl_progress at every change
-- (the generate reports about once a second): the row without its tables
-- list, with what its parts add up to. The payload carries snapshot_id and
-- source_node_id and no node_id, so listeners that follow an init (keyed
-- on node_id) pass it by. Only the error, hint and directory can be long:
-- cut in the payload (truncated: true), whole in the row.
CREATE OR REPLACE FUNCTION steep_repl.announce_snapshot_progress() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_payload jsonb := to_jsonb(NEW) - 'tables'
                     || (SELECT to_jsonb(t) FROM steep_repl.snapshot_totals(NEW.snapshot_id) t)
                     || jsonb_build_object('kind', 'snapshot');
BEGIN
  IF octet_length(v_payload::text) > 7900 THEN
    v_payload := v_payload || jsonb_build_object('error', left(NEW.error, 1000), 'hint', left(NEW.hint, 1000),
                                                 'output_dir', left(NEW.output_dir, 1000), 'truncated', true);
  END IF;
  PERFORM pg_notify('steep_repl_progress', v_payload::text);
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER snapshots_announce
  AFTER INSERT OR UPDATE ON steep_repl.snapshots
  FOR EACH ROW EXECUTE FUNCTION steep_repl.announce_snapshot_progress();
