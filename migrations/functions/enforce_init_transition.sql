-- The one enforcement point of the state machine: every change of
-- nodes.init_state, through transition() or a raw UPDATE, passes here.
CREATE OR REPLACE FUNCTION steep_repl.enforce_init_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_allowed text;
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.init_state <> 'uninitialized' THEN
      RAISE EXCEPTION 'a node is registered as uninitialized, not %', NEW.init_state
        USING ERRCODE = 'SR003';
    END IF;
    RETURN NEW;
  END IF;
  -- A state to itself is not in init_transitions either: a second request to
  -- start the same phase is refused, not silently merged with the first.
  IF NOT EXISTS (SELECT 1 FROM steep_repl.init_transitions
                 WHERE from_state = OLD.init_state AND to_state = NEW.init_state) THEN
    SELECT string_agg(to_state, ', ' ORDER BY to_state) INTO v_allowed
      FROM steep_repl.init_transitions WHERE from_state = OLD.init_state;
    RAISE EXCEPTION 'illegal init_state transition for node %: % -> %', quote_ident(OLD.node_id), OLD.init_state, NEW.init_state
      USING ERRCODE = 'SR003',
            HINT = format('from %s a node may go to: %s', OLD.init_state, v_allowed);
  END IF;
  IF NEW.init_state = 'preparing' THEN
    NEW.init_started_at := now();
    NEW.init_completed_at := NULL;
  ELSIF NEW.init_state = 'synchronized' THEN
    NEW.init_completed_at := now();
  ELSIF NEW.init_state = 'uninitialized' THEN
    NEW.init_completed_at := NULL;
  END IF;
  RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER nodes_enforce_init_transition
  BEFORE INSERT OR UPDATE OF init_state ON steep_repl.nodes
  FOR EACH ROW EXECUTE FUNCTION steep_repl.enforce_init_transition();
