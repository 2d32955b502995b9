-- The reason for a transition travels in a transaction-local setting so a raw
-- UPDATE and transition() produce the same audit row and NOTIFY.
CREATE OR REPLACE FUNCTION steep_repl.announce_init_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_details jsonb := coalesce(nullif(current_setting('steep_repl.transition_details', true), '')::jsonb, '{}');
  v_audit_id bigint;
  v_at timestamptz;
BEGIN
  INSERT INTO steep_repl.audit_log (event, node_id, from_state, to_state, details)
  VALUES ('init.state_change', NEW.node_id, OLD.init_state, NEW.init_state,
          v_details || jsonb_build_object('source_node', NEW.init_source_node))
  RETURNING audit_id, occurred_at INTO v_audit_id, v_at;
  PERFORM pg_notify('steep_repl_state', jsonb_build_object(
    'node_id', NEW.node_id,
    'from', OLD.init_state,
    'to', NEW.init_state,
    'source_node', NEW.init_source_node,
    'audit_id', v_audit_id,
    'at', v_at,
    'reason', left(v_details ->> 'reason', 1000))::text);
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER nodes_announce_init_transition
  AFTER UPDATE OF init_state ON steep_repl.nodes
  FOR EACH ROW WHEN (OLD.init_state IS DISTINCT FROM NEW.init_state)
  EXECUTE FUNCTION steep_repl.announce_init_transition();
