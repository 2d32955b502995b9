-- The phases an init_progress row goes through: its method's, or a
-- reinit's (tables and schema: preparing, copying, verifying; full: the
-- method's, then verifying).
CREATE OR REPLACE FUNCTION steep_repl.reinit_phases(p_reinit jsonb, p_method_phases text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_reinit IS NULL THEN p_method_phases
              WHEN p_reinit ->> 'scope' = 'full' THEN p_method_phases || 'verifying'::text
              ELSE ARRAY['preparing', 'copying', 'verifying'] END
$$;
