-- Progress rows announce themselves; listeners get the whole row (without
-- options and not_replicated, which init_status has) on steep_repl_progress.
-- Only the error text can be long: it is cut to 1000 characters in the
-- payload when the row would pass NOTIFY's 8000-byte limit, and the full
-- text stays in the row.
CREATE OR REPLACE FUNCTION steep_repl.announce_progress() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_payload jsonb := to_jsonb(NEW) - 'options' - 'not_replicated';
BEGIN
  IF octet_length(v_payload::text) > 7900 THEN
    v_payload := v_payload || jsonb_build_object('error', left(NEW.error, 1000), 'truncated', true);
  END IF;
  PERFORM pg_notify('steep_repl_progress', v_payload::text);
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER init_progress_announce
  AFTER INSERT OR UPDATE ON steep_repl.init_progress
  FOR EACH ROW EXECUTE FUNCTION steep_repl.announce_progress();
