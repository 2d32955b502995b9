// Sequences do not replicate: at the end of the copy the target takes the
// source's values. A target sequence already further along is left alone,
// so a node that also writes (bidirectional) never hands out a used value.
import { Client } from 'pg';
import { qualified } from './quoting';
import { existingRelations } from './target-tables';

export interface SequenceCopy {
  copied: string[];
  missing: string[];
}

export async function copySequences(source: Client, target: Client): Promise<SequenceCopy> {
  const { rows } = await source.query(
    `SELECT schemaname AS schema_name, sequencename AS table_name, last_value::text AS last_value
     FROM pg_sequences WHERE steep_repl.is_user_schema(schemaname) AND last_value IS NOT NULL ORDER BY 1, 2`,
  );
  const existing = new Set(await existingRelations(target, rows));
  const result: SequenceCopy = { copied: [], missing: [] };
  for (const seq of rows) {
    const name = qualified(seq);
    if (!existing.has(seq)) {
      result.missing.push(name);
      continue;
    }
    await target.query(
      `SELECT setval($1::text::regclass, $2::bigint, true)
       WHERE coalesce(pg_sequence_last_value($1::text::regclass) < $2::bigint, true)`,
      [name, seq.last_value],
    );
    result.copied.push(name);
  }
  return result;
}
