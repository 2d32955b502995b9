// Two nodes that both hold data, for the merge tests: node A on clusterA(),
// node B on clusterB(), registered with each other, the same tables on both
// (odd names: spaces, quotes, capitals, unicode, a reserved word; a parent
// and a child with a foreign key, an identity and a generated column) and
// rows made from formulas: shared identical rows, conflicts (same key,
// another row), rows only on A and rows only on B. Every table has an
// updated_at (timestamptz, timestamp or date) whose conflicts are laid out
// so that last-modified picks A, B, or falls back to A (equal, both NULL).
// The rows are made here, in TypeScript, and inserted as they are: a test
// computes what a strategy must leave from the same rows, never from what
// the product reports. Node A's agent runs the merge; the test starts it.
import { DatabaseError, escapeIdentifier, QueryConfig } from 'pg';
import { clusterA, clusterB, dropDatabase, query, withClient } from './clusters';
import { contentHashes } from './content-hash';
import { createNodeDb, dropReplicationObjects, NodeDb, registerPair } from './node-pair';
import { AgentProcess } from './processes';
import { waitSlotCaughtUp } from './reinit-nodes';
import { waitUntil } from './wait';
import { startWriter, Writer } from './writer';

export type Side = 'a' | 'b';
export type Value = string | number | null;
export type Row = Record<string, Value>;
// per table label: canonical key JSON (the key's values in key order) → row
export type Tables = Map<string, Map<string, Row>>;

export const oddSchema = 'Mërge "S" ü';
const s = escapeIdentifier(oddSchema);

export interface TableSpec {
  schema: string;
  name: string;
  // the SQL name
  label: string;
  key: string[];
  // the columns an INSERT gives (not the generated one)
  insert: string[];
  // read back as instants, whatever the session's time zone
  instants: string[];
  // the updated_at's type
  stampType: 'timestamptz' | 'timestamp' | 'date';
  rows(side: Side): Row[];
}

export interface Sizes {
  // of the items table; the others are small and fixed
  shared: number;
  conflicts: number;
  onlyA: number;
  onlyB: number;
}

export const defaultSizes: Sizes = { shared: 2000, conflicts: 1000, onlyA: 300, onlyB: 400 };

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);
const base = Date.UTC(2024, 0, 1);
const iso = (ms: number) => new Date(ms).toISOString();
// updated_at values: u units (minutes, days for a date) after 2024-01-01
const stamp = (type: TableSpec['stampType'], u: number | null): string | null => {
  if (u === null) return null;
  if (type === 'date') return iso(base + u * 86400000).slice(0, 10);
  const t = iso(base + u * 60000).slice(0, 19);
  return type === 'timestamptz' ? `${t}+00:00` : t;
};
// A conflict's two updated_at values by i % 6: A later, B later, equal,
// A NULL, both NULL, B NULL.
export function conflictStamps(i: number): [number | null, number | null] {
  switch (i % 6) {
    case 0:
      return [i + 60, i];
    case 1:
      return [i, i + 60];
    case 2:
      return [i, i];
    case 3:
      return [null, i];
    case 4:
      return [null, null];
    default:
      return [i, null];
  }
}

// The tables: rows(side) gives every row of that node.
export function tableSpecs(sizes: Sizes = defaultSizes): TableSpec[] {
  const items: TableSpec = {
    schema: oddSchema,
    name: 'Items Ä',
    label: `${s}."Items Ä"`,
    key: ['id'],
    insert: ['id', 'v', 'n', 'updated_at'],
    instants: ['updated_at'],
    stampType: 'timestamptz',
    rows(side) {
      const t = (u: number | null) => stamp('timestamptz', u);
      const shared = range(1, sizes.shared).map((i) => ({ id: i, v: `shared ${i}`, n: i * 0.25, updated_at: t(i) }));
      const conflicts = range(sizes.shared + 1, sizes.conflicts).map((i) => {
        const [ta, tb] = conflictStamps(i);
        return side === 'a' ? { id: i, v: `a ${i}`, n: i * 0.25, updated_at: t(ta) } : { id: i, v: `b ${i} ä`, n: i * 0.25 + 1, updated_at: t(tb) };
      });
      const own = side === 'a' ? range(10001, sizes.onlyA) : range(20001, sizes.onlyB);
      return [...shared, ...conflicts, ...own.map((i) => ({ id: i, v: `only ${side} ${i}`, n: i * 0.5, updated_at: t(i) }))];
    },
  };
  const parent: TableSpec = {
    schema: 'public',
    name: 'parent',
    label: 'public.parent',
    key: ['id'],
    insert: ['id', 'name', 'updated_at'],
    instants: [],
    stampType: 'timestamp',
    rows(side) {
      const t = (u: number | null) => stamp('timestamp', u);
      const row = (id: number, name: string, u: number | null) => ({ id, name, name_len: [...name].length, updated_at: t(u) });
      const shared = range(1, 50).map((i) => row(i, `parent ${i}`, i));
      const conflicts = range(51, 10).map((i) => {
        const [ta, tb] = conflictStamps(i);
        return side === 'a' ? row(i, `parent ${i} on A ä`, ta) : row(i, `parent ${i} on B`, tb);
      });
      const own = side === 'a' ? range(101, 20) : range(201, 30);
      return [...shared, ...conflicts, ...own.map((i) => row(i, `${side} parent ${i}`, i))];
    },
  };
  // B's conflicting children and its own reference parents only B holds:
  // written to A, they need those parents there first
  const child: TableSpec = {
    schema: 'public',
    name: 'Child "Rows"',
    label: 'public."Child ""Rows"""',
    key: ['id'],
    insert: ['id', 'parent_id', 'note', 'updated_at'],
    instants: [],
    stampType: 'date',
    rows(side) {
      const t = (u: number | null) => stamp('date', u);
      const shared = range(1, 100).map((i) => ({ id: i, parent_id: 1 + (i % 50), note: `child ${i}`, updated_at: t(i) }));
      const conflicts = range(101, 10).map((i) => {
        const [ta, tb] = conflictStamps(i);
        return side === 'a'
          ? { id: i, parent_id: 1 + (i % 50), note: `child ${i} of A`, updated_at: t(ta) }
          : { id: i, parent_id: 201 + (i % 30), note: `child ${i} of B`, updated_at: t(tb) };
      });
      const own =
        side === 'a'
          ? range(1001, 40).map((i) => ({ id: i, parent_id: 101 + (i % 20), note: `a child ${i}`, updated_at: t(i) }))
          : range(2001, 60).map((i) => ({ id: i, parent_id: 201 + (i % 30), note: `b child ${i}`, updated_at: t(i) }));
      return [...shared, ...conflicts, ...own];
    },
  };
  // a composite key of text and int, with a capital and a reserved word
  const tags: TableSpec = {
    schema: oddSchema,
    name: 'tags',
    label: `${s}.tags`,
    key: ['Key', 'select'],
    insert: ['Key', 'select', 'label', 'updated_at'],
    instants: ['updated_at'],
    stampType: 'timestamptz',
    rows(side) {
      const t = (u: number | null) => stamp('timestamptz', u);
      const k = (i: number) => ({ Key: `täg ${String(i).padStart(4, '0')}`, select: i % 7 });
      const shared = range(1, 200).map((i) => ({ ...k(i), label: `l ${i}`, updated_at: t(i) }));
      const conflicts = range(201, 20).map((i) => {
        const [ta, tb] = conflictStamps(i);
        return { ...k(i), label: `l ${i} ${side}`, updated_at: t(side === 'a' ? ta : tb) };
      });
      const own = side === 'a' ? range(301, 30) : range(401, 30);
      return [...shared, ...conflicts, ...own.map((i) => ({ ...k(i), label: `${side} ${i}`, updated_at: t(i) }))];
    },
  };
  return [items, parent, child, tags];
}

export const schemaSql = `
  CREATE SCHEMA ${s};
  CREATE TABLE ${s}."Items Ä" (id int PRIMARY KEY, v text NOT NULL, n numeric(10,2), updated_at timestamptz);
  CREATE TABLE public.parent (id int PRIMARY KEY, name text NOT NULL, name_len int GENERATED ALWAYS AS (length(name)) STORED, updated_at timestamp);
  CREATE TABLE public."Child ""Rows""" (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id int NOT NULL CONSTRAINT "child → parent" REFERENCES public.parent (id), note text, updated_at date);
  CREATE TABLE ${s}.tags ("Key" text, "select" int, label text, updated_at timestamptz(3), PRIMARY KEY ("Key", "select"));
  CREATE SEQUENCE public.ticket_seq;
`;

// ticket_seq's value on each node: a merge leaves the larger on both
export const sequenceValues = { a: 100, b: 500 };

export const keyOf = (spec: TableSpec, row: Row): string => JSON.stringify(spec.key.map((c) => row[c]));

export function normalize(spec: TableSpec, row: Row): Row {
  const out: Row = { ...row };
  for (const c of spec.instants) if (out[c] !== null && out[c] !== undefined) out[c] = iso(Date.parse(String(out[c])));
  return out;
}

// Key order, as PostgreSQL sorts these keys (numbers; texts of one prefix and fixed width).
export function compareKeys(x: string, y: string): number {
  const a = JSON.parse(x) as Value[];
  const b = JSON.parse(y) as Value[];
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    if (typeof a[i] === 'number' && typeof b[i] === 'number') return (a[i] as number) - (b[i] as number);
    return String(a[i]) < String(b[i]) ? -1 : 1;
  }
  return 0;
}

// Rows equal as data: the same columns and values (key order of the object aside).
export const canonical = (row: Row): string => JSON.stringify(Object.keys(row).sort().map((k) => [k, row[k]]));

export function seedTables(specs: TableSpec[], side: Side): Tables {
  return new Map(specs.map((spec) => [spec.label, new Map(spec.rows(side).map((r) => [keyOf(spec, r), normalize(spec, r)]))]));
}

export const cloneTables = (t: Tables): Tables => new Map([...t].map(([label, rows]) => [label, new Map([...rows].map(([k, r]) => [k, { ...r }]))]));

// A conflict's winner: A's row, B's row, or a row of its own (manual).
export type Decide = (spec: TableSpec, key: string, a: Row, b: Row) => Row;
export const preferA: Decide = (_spec, _key, a) => a;
export const preferB: Decide = (_spec, _key, _a, b) => b;
// The later value wins; a NULL loses to a value; equal or both NULL: A.
export const lastModified =
  (column: string): Decide =>
  (_spec, _key, a, b) => {
    const x = a[column];
    const y = b[column];
    if (y === null) return a;
    if (x === null) return b;
    return String(x) >= String(y) ? a : b;
  };

export interface TableExpectation {
  rows_a: number;
  rows_b: number;
  identical: number;
  only_a: number;
  only_b: number;
  conflicting: number;
  // first 10 of each in key order, as key value arrays
  sample: { only_a: Value[][]; only_b: Value[][]; conflicting: Value[][] };
  // with a strategy
  won_a: number;
  won_b: number;
  to_a: number;
  to_b: number;
}

// What an analysis must count, and a strategy write, computed from the rows.
export function expectation(specs: TableSpec[], a: Tables, b: Tables, decide?: Decide): Record<string, TableExpectation> {
  const out: Record<string, TableExpectation> = {};
  for (const spec of specs) {
    const ra = a.get(spec.label)!;
    const rb = b.get(spec.label)!;
    const onlyA = [...ra.keys()].filter((k) => !rb.has(k)).sort(compareKeys);
    const onlyB = [...rb.keys()].filter((k) => !ra.has(k)).sort(compareKeys);
    const both = [...ra.keys()].filter((k) => rb.has(k));
    const conflicting = both.filter((k) => canonical(ra.get(k)!) !== canonical(rb.get(k)!)).sort(compareKeys);
    let wonA = 0;
    let wonB = 0;
    let own = 0;
    if (decide)
      for (const k of conflicting) {
        const w = decide(spec, k, ra.get(k)!, rb.get(k)!);
        if (w === ra.get(k)) wonA++;
        else if (w === rb.get(k)) wonB++;
        else own++;
      }
    const keys = (ks: string[]) => ks.slice(0, 10).map((k) => JSON.parse(k) as Value[]);
    out[spec.label] = {
      rows_a: ra.size,
      rows_b: rb.size,
      identical: both.length - conflicting.length,
      only_a: onlyA.length,
      only_b: onlyB.length,
      conflicting: conflicting.length,
      sample: { only_a: keys(onlyA), only_b: keys(onlyB), conflicting: keys(conflicting) },
      won_a: wonA,
      won_b: wonB,
      to_a: onlyB.length + wonB + own,
      to_b: onlyA.length + wonA + own,
    };
  }
  return out;
}

// What both nodes must hold after a merge of these rows by `decide`.
export function merged(specs: TableSpec[], a: Tables, b: Tables, decide: Decide): Tables {
  const out: Tables = new Map();
  for (const spec of specs) {
    const ra = a.get(spec.label)!;
    const rb = b.get(spec.label)!;
    const rows = new Map<string, Row>();
    for (const [k, r] of ra) rows.set(k, rb.has(k) && canonical(r) !== canonical(rb.get(k)!) ? { ...decide(spec, k, r, rb.get(k)!) } : { ...r });
    for (const [k, r] of rb) if (!ra.has(k)) rows.set(k, { ...r });
    out.set(spec.label, rows);
  }
  return out;
}

// Every row of the tables as the node holds them now.
export async function readTables(url: string, specs: TableSpec[]): Promise<Tables> {
  return withClient(url, async (client) => {
    await client.query("SET TimeZone = 'UTC'");
    const out: Tables = new Map();
    for (const spec of specs) {
      const { rows } = await client.query(`SELECT to_jsonb(t) AS r FROM ONLY ${spec.label} t`);
      out.set(spec.label, new Map(rows.map(({ r }) => [keyOf(spec, r), normalize(spec, r)])));
    }
    return out;
  });
}

// How the rows differ from the expected ones, per table (empty: equal):
// counts and the first few of each kind.
export function differences(actual: Tables, expected: Tables): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [label, want] of expected) {
    const have = actual.get(label) ?? new Map<string, Row>();
    const missing = [...want.keys()].filter((k) => !have.has(k));
    const extra = [...have.keys()].filter((k) => !want.has(k));
    const different = [...want.keys()].filter((k) => have.has(k) && canonical(have.get(k)!) !== canonical(want.get(k)!));
    if (missing.length + extra.length + different.length === 0) continue;
    out[label] = {
      missing: missing.length,
      extra: extra.length,
      different: different.length,
      first: {
        missing: missing.slice(0, 3),
        extra: extra.slice(0, 3).map((k) => have.get(k)),
        different: different.slice(0, 3).map((k) => ({ have: have.get(k), want: want.get(k) })),
      },
    };
  }
  return out;
}

async function seed(url: string, specs: TableSpec[], side: Side): Promise<void> {
  await withClient(url, async (client) => {
    await client.query("SET TimeZone = 'UTC'");
    for (const spec of specs) {
      const cols = spec.insert.map(escapeIdentifier).join(', ');
      await client.query(`INSERT INTO ${spec.label} (${cols}) OVERRIDING SYSTEM VALUE SELECT ${cols} FROM jsonb_populate_recordset(NULL::${spec.label}, $1)`, [
        JSON.stringify(spec.rows(side)),
      ]);
    }
    await client.query(`SELECT setval('public.ticket_seq', ${sequenceValues[side]})`);
    await client.query('ANALYZE');
  });
}

export interface ReplicationObjects {
  slots: string[];
  publications: string[];
  subscriptions: string[];
}

export async function replicationObjects(url: string): Promise<ReplicationObjects> {
  const names = async (sql: string) => (await query(url, sql)).map((r) => r.n as string).sort();
  return {
    slots: await names('SELECT slot_name AS n FROM pg_replication_slots WHERE database = current_database()'),
    publications: await names('SELECT pubname AS n FROM pg_publication'),
    subscriptions: await names('SELECT subname AS n FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())'),
  };
}

export interface MergePair {
  tag: string;
  a: NodeDb;
  b: NodeDb;
  specs: TableSpec[];
  labels: string[];
  // the rows each node was given
  seeded: { a: Tables; b: Tables };
  // replication_name(A, B): A's publication and slot, B's subscription; nameBA the other way
  nameAB: string;
  nameBA: string;
  agents: AgentProcess[];
  // node A's agent (the coordinator's), a new process
  startAgent(env?: Record<string, string>): Promise<AgentProcess>;
  // start_merge on A's database
  startMerge(options: Record<string, unknown>): Promise<any>;
  // the refusal of a start_merge (fails the test if it started)
  refusedMerge(options: Record<string, unknown>, nodes?: { a?: string; b?: string; on?: 'a' | 'b' }): Promise<DatabaseError>;
  status(mergeId: number): Promise<any>;
  // once the run left queued and running
  waitEnd(mergeId: number, timeoutMs?: number): Promise<any>;
  // each node's state in its own registry
  states(): Promise<{ a: string; b: string }>;
  waitStates(states: string[], timeoutMs?: number): Promise<{ a: string; b: string }>;
  // each node's own init_progress row (undefined: none)
  progress(): Promise<{ a: any; b: any }>;
  replication(): Promise<{ a: ReplicationObjects; b: ReplicationObjects }>;
  // replication objects of a merged pair
  merging(): { a: ReplicationObjects; b: ReplicationObjects };
  hashes(): Promise<{ a: Record<string, string>; b: Record<string, string> }>;
  read(): Promise<{ a: Tables; b: Tables }>;
  // what a refused or read-only run must leave as it was
  snapshot(): Promise<unknown>;
  // merge.* events in each node's audit log
  events(prefix?: string): Promise<{ a: Array<{ event: string; node_id: string; details: any }>; b: Array<{ event: string; node_id: string; details: any }> }>;
  // each node applied everything the other wrote so far
  settle(timeoutMs?: number): Promise<void>;
  drop(): Promise<void>;
}

export async function createMergePair(options: { tag: string; sizes?: Partial<Sizes>; extraSchemaSql?: string }): Promise<MergePair> {
  const specs = tableSpecs({ ...defaultSizes, ...options.sizes });
  const [a, b] = await Promise.all([
    createNodeDb(clusterA(), `${options.tag}_a`, `Mërge "A" ${options.tag}`),
    createNodeDb(clusterB(), `${options.tag}_b`, `mërge B ${options.tag}`),
  ]);
  const agents: AgentProcess[] = [];
  const drop = async () => {
    await Promise.all(agents.map((agent) => agent.stop('SIGKILL')));
    await dropReplicationObjects([a, b]);
    await Promise.all([dropDatabase(a.cluster, a.name), dropDatabase(b.cluster, b.name)].map((p) => p.catch(() => undefined)));
  };
  try {
    await registerPair(a, b);
    await Promise.all([query(a.url, schemaSql + (options.extraSchemaSql ?? '')), query(b.url, schemaSql + (options.extraSchemaSql ?? ''))]);
    await Promise.all([seed(a.url, specs, 'a'), seed(b.url, specs, 'b')]);
  } catch (err) {
    await drop();
    throw err;
  }
  const [{ ab, ba }] = await query(a.url, 'SELECT steep_repl.replication_name($1, $2) AS ab, steep_repl.replication_name($2, $1) AS ba', [a.id, b.id]);
  const labels = specs.map((t) => t.label);
  const stateOf = async (db: NodeDb) => (await query(db.url, 'SELECT init_state FROM steep_repl.nodes WHERE node_id = $1', [db.id]))[0].init_state as string;
  const eventsOf = (db: NodeDb, prefix: string) =>
    query(db.url, "SELECT event, node_id, details FROM steep_repl.audit_log WHERE event LIKE $1 || '%' ORDER BY audit_id", [prefix]);
  const pair: MergePair = {
    tag: options.tag,
    a,
    b,
    specs,
    labels,
    seeded: { a: seedTables(specs, 'a'), b: seedTables(specs, 'b') },
    nameAB: ab,
    nameBA: ba,
    agents,
    startAgent: async (env = {}) => {
      const agent = await AgentProcess.start(a.url, [], env);
      agents.push(agent);
      return agent;
    },
    startMerge: async (opts) => (await query(a.url, 'SELECT steep_repl.start_merge($1, $2, $3) AS r', [a.id, b.id, opts]))[0].r,
    refusedMerge: async (opts, nodes = {}) => {
      const url = nodes.on === 'b' ? b.url : a.url;
      try {
        const started = await query(url, 'SELECT steep_repl.start_merge($1, $2, $3) AS r', [nodes.a ?? a.id, nodes.b ?? b.id, opts]);
        throw new Error(`start_merge was not refused: ${JSON.stringify(opts)} → ${JSON.stringify(started[0].r)}`);
      } catch (err) {
        if (err instanceof DatabaseError) return err;
        throw err;
      }
    },
    status: async (id) => (await query(a.url, 'SELECT steep_repl.merge_status($1) AS r', [id]))[0].r,
    waitEnd: (id, timeoutMs = 60000) =>
      waitUntil(
        `merge ${id} to end`,
        async () => {
          const st = await pair.status(id);
          return !['queued', 'running'].includes(st.state) && st;
        },
        timeoutMs,
        100,
      ),
    states: async () => ({ a: await stateOf(a), b: await stateOf(b) }),
    waitStates: (states, timeoutMs = 60000) =>
      waitUntil(
        `both nodes ${states.join(' or ')}`,
        async () => {
          const st = await pair.states();
          return states.includes(st.a) && states.includes(st.b) && st;
        },
        timeoutMs,
        100,
      ),
    progress: async () => {
      const row = async (db: NodeDb) => (await query(db.url, 'SELECT * FROM steep_repl.init_progress WHERE node_id = $1', [db.id]))[0];
      return { a: await row(a), b: await row(b) };
    },
    replication: async () => ({ a: await replicationObjects(a.url), b: await replicationObjects(b.url) }),
    merging: () => ({
      a: { slots: [ab], publications: [ab], subscriptions: [ba] },
      b: { slots: [ba], publications: [ba], subscriptions: [ab] },
    }),
    hashes: async () => ({ a: await contentHashes(a.url, labels), b: await contentHashes(b.url, labels) }),
    read: async () => ({ a: await readTables(a.url, specs), b: await readTables(b.url, specs) }),
    snapshot: async () => {
      const registry = (db: NodeDb) =>
        query(db.url, 'SELECT node_id, init_state, init_source_node FROM steep_repl.nodes ORDER BY node_id');
      const progress = (db: NodeDb) => query(db.url, 'SELECT to_jsonb(p) AS p FROM steep_repl.init_progress p ORDER BY node_id');
      const tableProgress = (db: NodeDb) => query(db.url, 'SELECT count(*)::int AS n FROM steep_repl.init_table_progress');
      const sequence = (db: NodeDb) => query(db.url, 'SELECT last_value::int AS v FROM public.ticket_seq');
      const divergence = (db: NodeDb) => query(db.url, 'SELECT count(*)::int AS n FROM steep_repl.node_divergence');
      const side = async (db: NodeDb) => ({
        registry: await registry(db),
        progress: await progress(db),
        tableProgress: await tableProgress(db),
        sequence: await sequence(db),
        divergence: await divergence(db),
        replication: await replicationObjects(db.url),
        hashes: await contentHashes(db.url, labels),
      });
      return { a: await side(a), b: await side(b) };
    },
    events: async (prefix = 'merge.') => ({ a: await eventsOf(a, prefix), b: await eventsOf(b, prefix) }),
    settle: async (timeoutMs = 30000) => {
      await waitSlotCaughtUp(a.url, ab, timeoutMs);
      await waitSlotCaughtUp(b.url, ba, timeoutMs);
    },
    drop,
  };
  return pair;
}

// A pair per test, each with a tag of its own (slot names are cluster-wide),
// dropped after the test whatever happened.
export function pairsOf(fileTag: string): { create(options?: { sizes?: Partial<Sizes>; extraSchemaSql?: string }): Promise<MergePair>; dropAll(): Promise<void> } {
  const made: MergePair[] = [];
  let n = 0;
  return {
    create: async (options = {}) => {
      const pair = await createMergePair({ tag: `${fileTag}_${++n}`, ...options });
      made.push(pair);
      return pair;
    },
    dropAll: async () => {
      for (const pair of made.splice(0)) await pair.drop();
    },
  };
}

// A sample key as a merge records it (an object of the key's columns, or
// already an array), as the key's values in key order.
export const keyValues = (spec: TableSpec, key: unknown): Value[] =>
  Array.isArray(key) ? (key as Value[]) : spec.key.map((c) => (key as Record<string, Value>)[c]);

// The items table's writer on one node: transaction n inserts row base + n,
// adds 1000 to n of row base + n/2 (its own, already written) and renames
// one of the rows only this node held when seeded. replay() applies the
// committed transactions to rows, so a test knows every written value.
export interface ItemsWriter {
  writer: Writer;
  replay(tables: Tables): void;
  // keys it inserted (committed)
  keys(): string[];
}

export function itemsWriter(pair: MergePair, side: Side, base: number, pauseMs = 10): ItemsWriter {
  const spec = pair.specs[0];
  const own = [...pair.seeded[side].get(spec.label)!.keys()].filter((k) => !pair.seeded[side === 'a' ? 'b' : 'a'].get(spec.label)!.has(k)).sort(compareKeys);
  const ownId = (n: number) => (JSON.parse(own[n % own.length]) as number[])[0];
  const statements = (n: number): QueryConfig[] => [
    { text: `INSERT INTO ${spec.label} (id, v, n) VALUES ($1, $2, $3)`, values: [base + n, `${side} w ${n}`, n] },
    { text: `UPDATE ${spec.label} SET n = n + 1000 WHERE id = $1`, values: [base + Math.floor(n / 2)] },
    { text: `UPDATE ${spec.label} SET v = $2 WHERE id = $1`, values: [ownId(n), `${side} renamed ${n}`] },
  ];
  const writer = startWriter(side === 'a' ? pair.a.url : pair.b.url, statements, { pauseMs });
  return {
    writer,
    replay(tables) {
      const rows = tables.get(spec.label)!;
      for (let n = 0; n < writer.counts.transactions; n++) {
        rows.set(JSON.stringify([base + n]), { id: base + n, v: `${side} w ${n}`, n, updated_at: null });
        const own2 = rows.get(JSON.stringify([base + Math.floor(n / 2)]))!;
        own2.n = (own2.n as number) + 1000;
        rows.get(JSON.stringify([ownId(n)]))!.v = `${side} renamed ${n}`;
      }
    },
    keys: () => range(0, writer.counts.transactions).map((n) => JSON.stringify([base + n])),
  };
}

// Stops writers whatever happens to the others; rethrows the first failure.
export async function stopWriters(writers: ItemsWriter[]): Promise<void> {
  const settled = await Promise.allSettled(writers.map((w) => w.writer.stop()));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

// The run's table rows by label.
export const runTables = (status: any): Record<string, any> => Object.fromEntries((status.tables ?? []).map((t: any) => [t.label, t]));
