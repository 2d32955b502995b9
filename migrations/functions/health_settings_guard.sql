-- health_settings keeps exactly one row. DELETE and TRUNCATE are refused
-- (a missing row would leave the thresholds undefined); an INSERT replaces
-- the row's values instead of adding one, which is also what lets a
-- pg_restore put a DBA's dumped values over the row CREATE EXTENSION made.
-- updated_at says when a value last changed.
CREATE OR REPLACE FUNCTION steep_repl.health_settings_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF EXISTS (SELECT 1 FROM steep_repl.health_settings) THEN
      UPDATE steep_repl.health_settings h
         SET watch_interval_seconds = NEW.watch_interval_seconds, lag_bytes = NEW.lag_bytes, lag_seconds = NEW.lag_seconds,
             error_window_seconds = NEW.error_window_seconds, worker_missing_seconds = NEW.worker_missing_seconds,
             slot_retained_bytes = NEW.slot_retained_bytes, slot_safe_wal_bytes = NEW.slot_safe_wal_bytes,
             slot_inactive_seconds = NEW.slot_inactive_seconds, history_seconds = NEW.history_seconds
       WHERE h.only_row;
      RETURN NULL;
    END IF;
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'health_settings keeps its one row: UPDATE it'
    USING ERRCODE = 'SR004',
          HINT = 'e.g. UPDATE steep_repl.health_settings SET lag_bytes = 2147483648; the defaults are the columns'' defaults';
END $$;

CREATE OR REPLACE FUNCTION steep_repl.health_settings_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF to_jsonb(NEW) - 'updated_at' IS DISTINCT FROM to_jsonb(OLD) - 'updated_at' THEN
    NEW.updated_at := now();
  END IF;
  RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER health_settings_one_row
  BEFORE INSERT OR DELETE ON steep_repl.health_settings
  FOR EACH ROW EXECUTE FUNCTION steep_repl.health_settings_guard();

CREATE OR REPLACE TRIGGER health_settings_no_truncate
  BEFORE TRUNCATE ON steep_repl.health_settings
  FOR EACH STATEMENT EXECUTE FUNCTION steep_repl.health_settings_guard();

CREATE OR REPLACE TRIGGER health_settings_updated_at
  BEFORE UPDATE ON steep_repl.health_settings
  FOR EACH ROW EXECUTE FUNCTION steep_repl.health_settings_touch();
