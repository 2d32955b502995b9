-- A duration in the words replication health's reasons use: "45 s",
-- "6 min", "2 h 5 min", "3 d 4 h" (whole units, rounded down).
CREATE OR REPLACE FUNCTION steep_repl.health_duration(p_seconds numeric) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT CASE WHEN s < 60 THEN s || ' s'
              WHEN s < 3600 THEN (s / 60) || ' min'
              WHEN s < 86400 THEN (s / 3600) || ' h' || coalesce(' ' || nullif((s % 3600) / 60, 0) || ' min', '')
              ELSE (s / 86400) || ' d' || coalesce(' ' || nullif((s % 86400) / 3600, 0) || ' h', '') END
  FROM (SELECT greatest(0, round(p_seconds))::bigint AS s) x
$$;
