// After the exchange: sequences do not replicate, and both nodes now hold
// values each handed out, so every user sequence both nodes have goes to
// the further of the two last values on both (the larger; the smaller for
// a descending one). Neither node then hands out a value the other used.
import { Client } from 'pg';
import { qualified } from '../replication/quoting';
import { PeerSession } from './sessions';

interface SequenceRow {
  schema_name: string;
  table_name: string;
  last_value: string | null;
  increment_by: string;
}

async function sequences(client: Client): Promise<Map<string, SequenceRow>> {
  const { rows } = await client.query(
    `SELECT schemaname::text AS schema_name, sequencename::text AS table_name, last_value::text AS last_value, increment_by::text AS increment_by
     FROM pg_catalog.pg_sequences WHERE steep_repl.is_user_schema(schemaname)`,
  );
  return new Map(rows.map((r: SequenceRow) => [qualified(r), r]));
}

async function advance(client: Client, name: string, value: string, descending: boolean): Promise<void> {
  await client.query(
    `SELECT setval($1::text::regclass, $2::bigint, true)
     WHERE coalesce(pg_sequence_last_value($1::text::regclass) ${descending ? '>' : '<'} $2::bigint, true)`,
    [name, value],
  );
}

// Returns the sequences it aligned.
export async function alignSequences(a: Client, b: PeerSession): Promise<string[]> {
  const [onA, onB] = [await sequences(a), await b.run(sequences)];
  const aligned: string[] = [];
  for (const [name, sa] of onA) {
    const sb = onB.get(name);
    if (!sb) continue;
    const descending = BigInt(sa.increment_by) < 0n;
    const values = [sa.last_value, sb.last_value].filter((v): v is string => v !== null).map(BigInt);
    if (!values.length) continue;
    const further = values.reduce((x, y) => (descending ? (y < x ? y : x) : y > x ? y : x)).toString();
    if (sa.last_value !== further) await advance(a, name, further, descending);
    if (sb.last_value !== further) await b.run((cb) => advance(cb, name, further, descending));
    aligned.push(name);
  }
  return aligned;
}
