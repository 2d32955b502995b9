-- Events: one audit row and one NOTIFY on steep_repl_events. A payload that
-- would pass NOTIFY's 8000-byte limit is cut to the event's identity; the
-- full details stay in audit_log.
CREATE OR REPLACE FUNCTION steep_repl.emit_event(p_event text, p_node_id text, p_details jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_audit_id bigint;
  v_at timestamptz;
  v_payload text;
BEGIN
  IF p_event IS NULL OR p_event !~ '^[a-z_]+\.[a-z_]+$' OR length(p_event) > 63 THEN
    RAISE EXCEPTION 'invalid event name %: expected area.what, e.g. init.started', quote_nullable(p_event)
      USING ERRCODE = 'SR004';
  END IF;
  IF length(p_node_id) > 63 THEN
    RAISE EXCEPTION 'invalid node id %: at most 63 characters', quote_literal(left(p_node_id, 70) || '...')
      USING ERRCODE = 'SR004';
  END IF;
  INSERT INTO steep_repl.audit_log (event, node_id, details)
  VALUES (p_event, p_node_id, coalesce(p_details, '{}'))
  RETURNING audit_id, occurred_at INTO v_audit_id, v_at;
  v_payload := jsonb_build_object('event', p_event, 'node_id', p_node_id, 'audit_id', v_audit_id,
                                  'at', v_at, 'details', coalesce(p_details, '{}'))::text;
  IF octet_length(v_payload) > 7900 THEN
    v_payload := jsonb_build_object('event', p_event, 'node_id', p_node_id, 'audit_id', v_audit_id,
                                    'at', v_at, 'truncated', true)::text;
  END IF;
  PERFORM pg_notify('steep_repl_events', v_payload);
  RETURN v_audit_id;
END $$;
