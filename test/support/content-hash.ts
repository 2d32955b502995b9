// What "the two nodes hold identical data" is checked by: per table, the
// row count and an md5 over every row in primary-key order (a table without
// one: in the order of the rows' text, duplicates included).
import { Client } from 'pg';
import { withClient } from './clusters';

export async function tableHash(client: Client, table: string): Promise<string> {
  const { rows: keys } = await client.query(
    `SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY array_position(i.indkey, a.attnum)) AS keys
     FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
     WHERE i.indrelid = $1::regclass AND i.indisprimary`,
    [table],
  );
  const order = keys[0].keys ?? 't::text COLLATE "C"';
  const { rows } = await client.query(
    `SELECT count(*)::int AS n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY ${order}), '')) AS hash FROM ${table} t`,
  );
  return `${rows[0].n}:${rows[0].hash}`;
}

// Tables as SQL names (quoted where PostgreSQL needs it), in the order given.
export async function contentHashes(url: string, tables: readonly string[]): Promise<Record<string, string>> {
  return withClient(url, async (client) => {
    const out: Record<string, string> = {};
    for (const t of tables) out[t] = await tableHash(client, t);
    return out;
  });
}
