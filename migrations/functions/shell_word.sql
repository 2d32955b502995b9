-- A word a POSIX shell reads back unchanged, for the commands messages
-- suggest (lib/format.ts shellWord is the same rule).
CREATE OR REPLACE FUNCTION steep_repl.shell_word(p_word text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT CASE WHEN p_word ~ '^[A-Za-z0-9_@%+=:,./-]+$' THEN p_word
              ELSE '''' || replace(p_word, '''', '''\''''') || '''' END
$$;
