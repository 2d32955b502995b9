-- Table events are decided here from the state each report moves a table
-- to, so a resumed job never announces a table twice.
CREATE OR REPLACE FUNCTION steep_repl.announce_table_progress() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.state IN ('copying', 'copied', 'done') AND (TG_OP = 'INSERT' OR OLD.state = 'pending') THEN
    PERFORM steep_repl.emit_event('init.table_started', NEW.node_id, jsonb_build_object(
      'schema', NEW.schema_name, 'table', NEW.table_name, 'rows_total', NEW.rows_total, 'bytes_total', NEW.bytes_total));
  END IF;
  IF NEW.state = 'done' AND (TG_OP = 'INSERT' OR OLD.state <> 'done') THEN
    PERFORM steep_repl.emit_event('init.table_complete', NEW.node_id, jsonb_build_object(
      'schema', NEW.schema_name, 'table', NEW.table_name, 'rows', greatest(NEW.rows_copied, coalesce(NEW.rows_total, 0)),
      'bytes', NEW.bytes_total,
      'seconds', round(extract(epoch FROM NEW.completed_at - NEW.started_at)::numeric, 3)));
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER init_table_progress_announce
  AFTER INSERT OR UPDATE OF state ON steep_repl.init_table_progress
  FOR EACH ROW EXECUTE FUNCTION steep_repl.announce_table_progress();
