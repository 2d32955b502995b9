-- A merge run announces itself on steep_repl_progress at every change (the
-- job reports at least every second while it works), as {kind: 'merge',
-- merge_id, node_a, node_b, mode, strategy, state, phase, step, percent,
-- tables_done, tables_total, rows_only_a, rows_only_b, rows_conflicting,
-- rows_to_a, rows_to_b, error}. The error is cut so that the payload stays
-- under NOTIFY's 8000 bytes; the row keeps all of it.
CREATE OR REPLACE FUNCTION steep_repl.announce_merge_progress() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_payload jsonb := jsonb_build_object(
    'kind', 'merge',
    'merge_id', NEW.merge_id,
    'node_a', NEW.node_a,
    'node_b', NEW.node_b,
    'mode', NEW.mode,
    'strategy', NEW.strategy,
    'state', NEW.state,
    'phase', NEW.phase,
    'step', left(NEW.step, 100),
    'percent', NEW.percent,
    'tables_done', NEW.tables_done,
    'tables_total', NEW.tables_total,
    'rows_only_a', NEW.rows_only_a,
    'rows_only_b', NEW.rows_only_b,
    'rows_conflicting', NEW.rows_conflicting,
    'rows_to_a', NEW.rows_to_a,
    'rows_to_b', NEW.rows_to_b,
    'error', left(NEW.error, 1000));
BEGIN
  -- 1000 characters can pass 7900 bytes once escaped (control characters, 4-byte letters)
  IF octet_length(v_payload::text) > 7900 THEN
    v_payload := v_payload || jsonb_build_object('error', left(NEW.error, 100), 'truncated', true);
  END IF;
  PERFORM pg_notify('steep_repl_progress', v_payload::text);
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER merge_runs_announce
  AFTER INSERT OR UPDATE ON steep_repl.merge_runs
  FOR EACH ROW EXECUTE FUNCTION steep_repl.announce_merge_progress();
