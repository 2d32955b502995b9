// Which row of each conflict (same key, different row on the two nodes at
// the merge point) both nodes keep. prefer-a / prefer-b: that node's;
// last-modified: the larger value of the column, read on both readers (a
// NULL loses to a value; equal, or both NULL: A's, as documented); manual:
// the resolution the DBA recorded for the key in the record run, used only
// while both rows are still the ones recorded (their row hashes).
import { Client } from 'pg';
import type { MergeStrategy } from '../../lib/sql/mergeStatus';
import { MergeError } from './errors';
import { ExchangeSql } from './exchange-sql';

export interface Decisions {
  // conflict keys whose A row both keep, and whose B row
  winsA: string[];
  winsB: string[];
  // manual 'row': key → the columns that replace A's row on both (JSON text)
  rows: Map<string, string>;
}

export interface Resolution {
  resolution: 'a' | 'b' | 'row' | null;
  resolvedRow: string | null;
  hashA: string | null;
  hashB: string | null;
}

// keys read per statement
const keysPerRead = 5000;

// key → the field of its row (a key absent: no row)
async function readBatched(
  reader: Client,
  keys: string[],
  statement: (keys: string[]) => { text: string; values: unknown[] },
  field: 'h' | 'v',
): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  for (let i = 0; i < keys.length; i += keysPerRead) {
    const { rows } = await reader.query(statement(keys.slice(i, i + keysPerRead)));
    for (const r of rows) out.set(r.k, r[field] ?? null);
  }
  return out;
}

// The row hashes of these keys on a reader.
export const rowHashes = (reader: Client, ex: ExchangeSql, keys: string[]): Promise<Map<string, string | null>> =>
  readBatched(reader, keys, (k) => ex.sql.rowsByKeys(k), 'h');

// The last-modified column compared by the server, in its own type's order:
// the values travel as text (the sessions print them alike) and are cast back.
async function laterOnB(
  readerA: Client,
  ex: ExchangeSql,
  column: string,
  keys: string[],
  a: Map<string, string | null>,
  b: Map<string, string | null>,
): Promise<Set<string>> {
  const type = ex.shape.columns.find((c) => c.name === column)!.type;
  const later = new Set<string>();
  for (let i = 0; i < keys.length; i += keysPerRead) {
    const items = keys.slice(i, i + keysPerRead).map((k) => ({ k, a: a.get(k) ?? null, b: b.get(k) ?? null }));
    const { rows } = await readerA.query(
      `SELECT x.k FROM jsonb_to_recordset($1::jsonb) AS x(k text, a ${type}, b ${type})
       WHERE x.b IS NOT NULL AND (x.a IS NULL OR x.b > x.a)`,
      [JSON.stringify(items)],
    );
    for (const r of rows) later.add(r.k);
  }
  return later;
}

export interface DecideInput {
  strategy: MergeStrategy;
  conflicts: string[];
  readerA: Client;
  readerB: Client;
  ex: ExchangeSql;
  column?: string;
  // manual: the recorded resolutions of this table by key (JSON text)
  resolutions?: Map<string, Resolution>;
  // manual: the record run, for messages
  resolutionsOf?: number;
}

// Manual conflicts that cannot be applied: no resolution recorded for the
// key, or a row that changed since it was recorded.
export interface Unapplicable {
  count: number;
  first?: string;
}

export async function decide(input: DecideInput): Promise<Decisions & { unapplicable: Unapplicable }> {
  const { strategy, conflicts } = input;
  const none = { count: 0 };
  if (!conflicts.length) return { winsA: [], winsB: [], rows: new Map(), unapplicable: none };
  if (strategy === 'prefer-a') return { winsA: conflicts, winsB: [], rows: new Map(), unapplicable: none };
  if (strategy === 'prefer-b') return { winsA: [], winsB: conflicts, rows: new Map(), unapplicable: none };
  if (strategy === 'last-modified') {
    const column = input.column!;
    const [a, b] = await Promise.all([input.readerA, input.readerB].map((r) => readBatched(r, conflicts, (k) => input.ex.columnByKeys(column, k), 'v')));
    const later = await laterOnB(input.readerA, input.ex, column, conflicts, a, b);
    return { winsA: conflicts.filter((k) => !later.has(k)), winsB: conflicts.filter((k) => later.has(k)), rows: new Map(), unapplicable: none };
  }
  // manual
  const resolutions = input.resolutions ?? new Map<string, Resolution>();
  const [ha, hb] = await Promise.all([rowHashes(input.readerA, input.ex, conflicts), rowHashes(input.readerB, input.ex, conflicts)]);
  const out: Decisions & { unapplicable: Unapplicable } = { winsA: [], winsB: [], rows: new Map(), unapplicable: { count: 0 } };
  for (const key of conflicts) {
    const r = resolutions.get(key);
    if (!r?.resolution || r.hashA !== ha.get(key) || r.hashB !== hb.get(key)) {
      out.unapplicable.count += 1;
      out.unapplicable.first ??= key;
      continue;
    }
    if (r.resolution === 'a') out.winsA.push(key);
    else if (r.resolution === 'b') out.winsB.push(key);
    else out.rows.set(key, r.resolvedRow!);
  }
  return out;
}

// The resolutions a manual merge applies: every recorded conflict of the
// record run for this table, by key (the jsonb key's text is the canonical
// key JSON the comparison gives).
export async function loadResolutions(control: Client, recordRun: number, table: { schema_name: string; table_name: string }): Promise<Map<string, Resolution>> {
  const { rows } = await control.query(
    `SELECT key::text AS k, resolution, resolved_row::text AS resolved_row, hash_a, hash_b FROM steep_repl.merge_conflicts
     WHERE merge_id = $1 AND schema_name = $2 AND table_name = $3`,
    [recordRun, table.schema_name, table.table_name],
  );
  return new Map(rows.map((r) => [r.k, { resolution: r.resolution, resolvedRow: r.resolved_row, hashA: r.hash_a, hashB: r.hash_b }]));
}

// first: the table and key of the first one
export function unapplicableError(count: number, first: string, recordRun: number | undefined): MergeError {
  return new MergeError(
    `${count === 1 ? '1 conflict differs' : `${count} conflicts differ`} from the ones resolved in merge ${recordRun ?? '?'} (first: ${first}): record them again with --strategy manual`,
    'refused',
    'a resolution applies to the rows it was recorded with: steep-repl node merge A B --strategy manual records the conflicts as they are now',
  );
}
