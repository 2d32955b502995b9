-- A verify's row announces itself on steep_repl_progress at every change
-- (the agent reports at least every 2 s while it works), as
-- {kind: 'verify', verify_id, node_id, peer_node_id, reason, state, phase,
-- percent, tables_done, tables_total, rows_compared, current_table, error}.
-- kind tells it from an init's progress row, which has the same node_id.
CREATE OR REPLACE FUNCTION steep_repl.announce_verify_progress() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('steep_repl_progress', jsonb_build_object(
    'kind', 'verify',
    'verify_id', NEW.verify_id,
    'node_id', NEW.node_id,
    'peer_node_id', NEW.peer_node_id,
    'reason', NEW.reason,
    'state', NEW.state,
    'phase', NEW.phase,
    'percent', NEW.percent,
    'tables_done', NEW.tables_done,
    'tables_total', NEW.tables_total,
    'rows_compared', NEW.rows_compared,
    'current_table', (SELECT format('%I.%I', t.schema_name, t.table_name) FROM steep_repl.verify_tables t
                      WHERE t.verify_id = NEW.verify_id AND t.status IN ('hashing', 'drilling', 'rechecking')
                      ORDER BY t.started_at DESC NULLS LAST LIMIT 1),
    'error', left(NEW.error, 1000))::text);
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER verify_runs_announce
  AFTER INSERT OR UPDATE ON steep_repl.verify_runs
  FOR EACH ROW EXECUTE FUNCTION steep_repl.announce_verify_progress();
