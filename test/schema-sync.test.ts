// Drift detection and schema sync against real servers: the source database
// on cluster A, the target on cluster B. Every drift kind of the issue's
// accuracy matrix is detected, and auto makes every table MATCH.
import { Client } from 'pg';
import { clusterA, clusterB, createNodeDatabase, dropDatabase, query } from './support/clusters';
import { SteepError } from '../lib/errors';
import { compareFingerprints, fingerprintSet, syncSchema, TableDifference } from '../lib/schema-sync';

interface DriftCase {
  table: string;
  source: string;
  target: string;
  kinds: string[];
  targetRows?: string;
}

// Table names carry the case; %T is replaced by the quoted, schema-qualified name.
const matrix: DriftCase[] = [
  { table: 'column added', source: 'CREATE TABLE %T (id int PRIMARY KEY, a int, b text)', target: 'CREATE TABLE %T (id int PRIMARY KEY, a int)', kinds: ['column_missing'] },
  { table: 'column dropped', source: 'CREATE TABLE %T (id int PRIMARY KEY, a int)', target: 'CREATE TABLE %T (id int PRIMARY KEY, a int, b text)', kinds: ['column_extra'], targetRows: "INSERT INTO %T VALUES (1, 10, 'x')" },
  { table: 'column added in the middle', source: 'CREATE TABLE %T (id int PRIMARY KEY, a int, b int, c int)', target: 'CREATE TABLE %T (id int PRIMARY KEY, a int, c int)', kinds: ['column_missing'], targetRows: 'INSERT INTO %T VALUES (1, 10, 30), (2, 20, 40)' },
  { table: 'column renamed', source: 'CREATE TABLE %T (id int PRIMARY KEY, new_name int)', target: 'CREATE TABLE %T (id int PRIMARY KEY, old_name int)', kinds: ['column_missing', 'column_extra'] },
  { table: 'columns reordered', source: 'CREATE TABLE %T (id int PRIMARY KEY, a int, b text)', target: 'CREATE TABLE %T (id int PRIMARY KEY, b text, a int)', kinds: ['column_order'], targetRows: "INSERT INTO %T VALUES (1, 'one', 1), (2, 'two', 2)" },
  { table: 'type changed', source: 'CREATE TABLE %T (id int PRIMARY KEY, v integer)', target: 'CREATE TABLE %T (id int PRIMARY KEY, v text)', kinds: ['column_type'], targetRows: "INSERT INTO %T VALUES (1, '42')" },
  { table: 'varchar length', source: 'CREATE TABLE %T (id int PRIMARY KEY, v varchar(20))', target: 'CREATE TABLE %T (id int PRIMARY KEY, v varchar(10))', kinds: ['column_type'] },
  { table: 'numeric precision', source: 'CREATE TABLE %T (id int PRIMARY KEY, v numeric(12,2))', target: 'CREATE TABLE %T (id int PRIMARY KEY, v numeric(10,2))', kinds: ['column_type'] },
  { table: 'array dimension', source: 'CREATE TABLE %T (id int PRIMARY KEY, v int[])', target: 'CREATE TABLE %T (id int PRIMARY KEY, v int)', kinds: ['column_type'] },
  { table: 'time zone', source: 'CREATE TABLE %T (id int PRIMARY KEY, v timestamptz)', target: 'CREATE TABLE %T (id int PRIMARY KEY, v timestamp)', kinds: ['column_type'] },
  { table: 'default added', source: 'CREATE TABLE %T (id int PRIMARY KEY, v int DEFAULT 5)', target: 'CREATE TABLE %T (id int PRIMARY KEY, v int)', kinds: ['column_default'] },
  { table: 'default changed', source: "CREATE TABLE %T (id int PRIMARY KEY, v text DEFAULT 'new')", target: "CREATE TABLE %T (id int PRIMARY KEY, v text DEFAULT 'old')", kinds: ['column_default'] },
  { table: 'default removed', source: 'CREATE TABLE %T (id int PRIMARY KEY, v int)', target: 'CREATE TABLE %T (id int PRIMARY KEY, v int DEFAULT 5)', kinds: ['column_default'] },
  { table: 'not null added', source: 'CREATE TABLE %T (id int PRIMARY KEY, v int NOT NULL)', target: 'CREATE TABLE %T (id int PRIMARY KEY, v int)', kinds: ['column_nullability'] },
  { table: 'not null removed', source: 'CREATE TABLE %T (id int PRIMARY KEY, v int)', target: 'CREATE TABLE %T (id int PRIMARY KEY, v int NOT NULL)', kinds: ['column_nullability'] },
  { table: 'generated changed', source: 'CREATE TABLE %T (id int PRIMARY KEY, a int, g int GENERATED ALWAYS AS (a * 2) STORED)', target: 'CREATE TABLE %T (id int PRIMARY KEY, a int, g int GENERATED ALWAYS AS (a * 3) STORED)', kinds: ['column_generated'], targetRows: 'INSERT INTO %T (id, a) VALUES (1, 7)' },
  { table: 'generated added', source: 'CREATE TABLE %T (id int PRIMARY KEY, a int, g int GENERATED ALWAYS AS (a + 1) STORED)', target: 'CREATE TABLE %T (id int PRIMARY KEY, a int, g int)', kinds: ['column_generated'] },
  { table: 'primary key changed', source: 'CREATE TABLE %T (id int, a int NOT NULL, PRIMARY KEY (id, a))', target: 'CREATE TABLE %T (id int PRIMARY KEY, a int NOT NULL)', kinds: ['primary_key'] },
  { table: 'primary key missing', source: 'CREATE TABLE %T (id int PRIMARY KEY, a int)', target: 'CREATE TABLE %T (id int NOT NULL, a int)', kinds: ['primary_key'] },
  { table: 'identity added', source: 'CREATE TABLE %T (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, a int)', target: 'CREATE TABLE %T (id int PRIMARY KEY, a int)', kinds: ['column_identity'], targetRows: 'INSERT INTO %T VALUES (5, 1)' },
  { table: 'identity table rebuilt', source: 'CREATE TABLE %T (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, a int, b text)', target: 'CREATE TABLE %T (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, b text)', kinds: ['column_missing'], targetRows: "INSERT INTO %T (b) VALUES ('x'), ('y')" },
  { table: 'replica identity', source: 'CREATE TABLE %T (id int PRIMARY KEY, a int); ALTER TABLE %T REPLICA IDENTITY FULL', target: 'CREATE TABLE %T (id int PRIMARY KEY, a int)', kinds: ['replica_identity'] },
  { table: 'Odd "Names" ü', source: 'CREATE TABLE %T ("Key ""K"" ü" int PRIMARY KEY, "Näme ""x"" y" varchar(20) DEFAULT \'a\', "select" int NOT NULL, "Order" int)', target: 'CREATE TABLE %T ("Key ""K"" ü" int PRIMARY KEY, "Näme ""x"" y" varchar(10), "select" int, "Order" int, "drop me; --" text)', kinds: ['column_type', 'column_default', 'column_nullability', 'column_extra'], targetRows: 'INSERT INTO %T VALUES (1, \'b\', 2, 3, \'x\')' },
  { table: 'only on the source', source: 'CREATE TABLE %T (id bigserial PRIMARY KEY, a text UNIQUE, CHECK (a <> \'\'))', target: '', kinds: ['table_missing'] },
];

const schema = 'Drift "Matrix" ü';
const qualified = (table: string) => `"${schema.replace(/"/g, '""')}"."${table.replace(/"/g, '""')}"`;
const ddl = (text: string, table: string) => text.replace(/%T/g, qualified(table));

async function connect(url: string): Promise<Client> {
  const client = new Client({ connectionString: url });
  await client.connect();
  return client;
}

describe('schema sync (source on A, target on B)', () => {
  let sourceDb: { name: string; url: string };
  let targetDb: { name: string; url: string };
  let source: Client;
  let target: Client;

  const fingerprintsOf = async (client: Client) =>
    (await client.query('SELECT schema_name, table_name, fingerprint FROM steep_repl.table_fingerprints() ORDER BY 1, 2')).rows;

  beforeAll(async () => {
    [sourceDb, targetDb] = await Promise.all([createNodeDatabase(clusterA(), 'schema_sync_src'), createNodeDatabase(clusterB(), 'schema_sync_tgt')]);
    source = await connect(sourceDb.url);
    target = await connect(targetDb.url);
  });
  afterAll(async () => {
    await source?.end();
    await target?.end();
    await Promise.all([sourceDb && dropDatabase(clusterA(), sourceDb.name), targetDb && dropDatabase(clusterB(), targetDb.name)]);
  });

  beforeEach(async () => {
    for (const client of [source, target]) {
      await client.query(`DROP SCHEMA IF EXISTS ${qualified(schema).split('.')[0]} CASCADE; DROP SCHEMA IF EXISTS extra CASCADE; DELETE FROM steep_repl.audit_log`);
    }
  });

  async function buildMatrix(): Promise<void> {
    const schemaSql = `CREATE SCHEMA ${qualified(schema).split('.')[0]}`;
    await source.query(schemaSql);
    await target.query(schemaSql);
    for (const c of matrix) {
      await source.query(ddl(c.source, c.table));
      if (c.target) await target.query(ddl(c.target, c.table));
      if (c.targetRows) await target.query(ddl(c.targetRows, c.table));
    }
    await source.query(ddl('CREATE TABLE %T (id int PRIMARY KEY, "My ""Quoted"" Col" text DEFAULT \'x\')', 'unchanged'));
    await target.query(ddl('CREATE TABLE %T (id int PRIMARY KEY, "My ""Quoted"" Col" text DEFAULT \'x\')', 'unchanged'));
    await target.query(ddl('CREATE TABLE %T (id int PRIMARY KEY)', 'only on the target'));
  }

  it('detects every drift kind of the matrix, per table and per column', async () => {
    await buildMatrix();
    const rows = await compareFingerprints(target, await fingerprintSet(source));
    const byTable = new Map(rows.map((r) => [r.table_name, r]));
    for (const c of matrix) {
      const row = byTable.get(c.table)!;
      expect({ table: c.table, status: row.status, blocking: row.blocking }).toEqual({
        table: c.table,
        status: c.target ? 'MISMATCH' : 'REMOTE_ONLY',
        blocking: true,
      });
      expect({ table: c.table, kinds: [...new Set(row.differences.map((d) => d.kind))].sort() }).toEqual({ table: c.table, kinds: [...c.kinds].sort() });
    }
    expect(byTable.get('unchanged')).toMatchObject({ status: 'MATCH', blocking: false, differences: [] });
    expect(byTable.get('only on the target')).toMatchObject({ status: 'LOCAL_ONLY', blocking: false });
    expect(byTable.get('varchar length')!.differences[0]).toMatchObject({
      column: 'v',
      source: 'character varying(20)',
      target: 'character varying(10)',
      detail: 'column v type differs: source character varying(20), target character varying(10)',
    });
    expect(byTable.get('column renamed')!.differences.map((d) => [d.kind, d.column])).toEqual([
      ['column_missing', 'new_name'],
      ['column_extra', 'old_name'],
    ]);
  });

  it('auto applies one plan that makes every table MATCH, keeping the target rows', async () => {
    await buildMatrix();
    const result = await syncSchema({ source, target, sourceNodeId: 'node_a', targetNodeId: 'node_b', mode: 'auto' });
    expect(result.outcome).toBe('applied');
    expect(result.ddl.length).toBeGreaterThan(matrix.length);
    const after = await compareFingerprints(target, await fingerprintSet(source));
    expect(after.filter((r) => r.status !== 'MATCH').map((r) => [r.table_name, r.status])).toEqual([['only on the target', 'LOCAL_ONLY']]);
    expect(await query(targetDb.url, ddl('SELECT id, a, b, c FROM %T ORDER BY id', 'column added in the middle'))).toEqual([
      { id: 1, a: 10, b: null, c: 30 },
      { id: 2, a: 20, b: null, c: 40 },
    ]);
    expect(await query(targetDb.url, ddl('SELECT * FROM %T ORDER BY id', 'columns reordered'))).toEqual([
      { id: 1, a: 1, b: 'one' },
      { id: 2, a: 2, b: 'two' },
    ]);
    expect(await query(targetDb.url, ddl('SELECT v FROM %T', 'type changed'))).toEqual([{ v: 42 }]);
    expect(await query(targetDb.url, ddl('SELECT * FROM %T', 'Odd "Names" ü'))).toEqual([{ 'Key "K" ü': 1, 'Näme "x" y': 'b', select: 2, Order: 3 }]);
    expect(await query(targetDb.url, ddl('SELECT g FROM %T', 'generated changed'))).toEqual([{ g: 14 }]);
    // identity sequences continue after the kept rows, also through a rebuild
    expect(await query(targetDb.url, ddl('INSERT INTO %T (a) VALUES (2) RETURNING id', 'identity added'))).toEqual([{ id: 6 }]);
    expect(await query(targetDb.url, ddl("INSERT INTO %T (b) VALUES ('z') RETURNING id", 'identity table rebuilt'))).toEqual([{ id: 3 }]);
    expect(await query(targetDb.url, ddl('SELECT id, a, b FROM %T ORDER BY id', 'identity table rebuilt'))).toEqual([
      { id: 1, a: null, b: 'x' },
      { id: 2, a: null, b: 'y' },
      { id: 3, a: null, b: 'z' },
    ]);
    const events = await query(targetDb.url, "SELECT event, node_id, details FROM steep_repl.audit_log WHERE event LIKE 'schema.%' ORDER BY audit_id");
    expect(events.map((e) => [e.event, e.node_id])).toEqual([
      ['schema.mismatch_detected', 'node_b'],
      ['schema.sync_applied', 'node_b'],
    ]);
    expect(events[1].details).toMatchObject({ source_node: 'node_a', statements: result.ddl.length });
  });

  it('strict refuses with exit code 3, lists every difference and changes nothing', async () => {
    await buildMatrix();
    const before = await fingerprintsOf(target);
    const listener = await connect(targetDb.url);
    const notified: Array<{ event: string; node_id: string; details?: { mode: string } }> = [];
    listener.on('notification', (n) => notified.push(JSON.parse(n.payload!)));
    await listener.query('LISTEN steep_repl_events');
    const err: SteepError = await syncSchema({ source, target, sourceNodeId: 'node_a', targetNodeId: 'node_b', mode: 'strict' }).then(
      () => {
        throw new Error('strict accepted a drifted schema');
      },
      (e) => e,
    );
    expect(err).toBeInstanceOf(SteepError);
    expect(err.exitCode).toBe(3);
    const differenceCount = matrix.reduce((n, c) => n + (c.kinds.length === 2 ? 2 : 1), 0);
    expect(err.message.split('\n').filter((l) => l.startsWith('  ')).length).toBeGreaterThanOrEqual(differenceCount);
    for (const c of matrix) expect(err.message).toContain(`"Drift ""Matrix"" ü".${/^[a-z_]+$/.test(c.table) ? c.table : `"${c.table.replace(/"/g, '""')}"`}:`);
    expect(err.message).not.toMatch(/SR00|SQLSTATE/);
    expect(await fingerprintsOf(target)).toEqual(before);
    const events = await query(targetDb.url, "SELECT event, details FROM steep_repl.audit_log WHERE event LIKE 'schema.%'");
    expect(events.map((e) => e.event)).toEqual(['schema.mismatch_detected']);
    expect(events[0].details.tables).toHaveLength(matrix.length);
    await listener.query('SELECT 1');
    await listener.end();
    expect(notified.map((n) => [n.event, n.node_id])).toEqual([['schema.mismatch_detected', 'node_b']]);
  });

  it('manual proceeds only when confirmed, never with a table the target lacks; dry-run plans without applying', async () => {
    await buildMatrix();
    const before = await fingerprintsOf(target);
    const base = { source, target, sourceNodeId: 'node_a', targetNodeId: 'node_b' } as const;
    const planned = await syncSchema({ ...base, mode: 'auto', dryRun: true });
    expect(planned.outcome).toBe('planned');
    expect(planned.ddl.some((s) => s.startsWith('CREATE TABLE "Drift ""Matrix"" ü"."only on the source"'))).toBe(true);
    // a missing table cannot receive rows: refused before any question
    let asked = false;
    await expect(syncSchema({ ...base, mode: 'manual', confirm: async () => (asked = true) })).rejects.toMatchObject({
      exitCode: 3,
      message: 'table of node node_a is missing on node node_b, which cannot receive its rows: "Drift ""Matrix"" ü"."only on the source"'.replace(/^/, '1 '),
      hint: expect.stringContaining('or use schema sync mode auto; nothing was changed'),
    });
    expect(asked).toBe(false);
    await source.query(ddl('DROP TABLE %T', 'only on the source'));
    await expect(syncSchema({ ...base, mode: 'manual' })).rejects.toMatchObject({ exitCode: 3 });
    await expect(syncSchema({ ...base, mode: 'manual', confirm: async () => false })).rejects.toMatchObject({ exitCode: 3 });
    let shown: TableDifference[] = [];
    const confirmed = await syncSchema({ ...base, mode: 'manual', confirm: async (d) => ((shown = d), true) });
    expect(confirmed.outcome).toBe('confirmed');
    expect(shown.filter((t) => t.blocking)).toHaveLength(matrix.length - 1);
    expect(await fingerprintsOf(target)).toEqual(before);
  });

  it('reports a match without events when nothing differs, and ignores tables only on the target', async () => {
    await source.query('CREATE SCHEMA extra; CREATE TABLE extra."select" ("from" int PRIMARY KEY, "ÄÖ ü" text NOT NULL)');
    await target.query('CREATE SCHEMA extra; CREATE TABLE extra."select" ("from" int PRIMARY KEY, "ÄÖ ü" text NOT NULL); CREATE TABLE extra.mine (x int)');
    const result = await syncSchema({ source, target, sourceNodeId: 'node_a', targetNodeId: 'node_b', mode: 'strict', schemas: ['extra'] });
    expect(result).toMatchObject({ outcome: 'match', ddl: [] });
    expect(result.differences.map((d) => [d.table_name, d.status])).toEqual([['mine', 'LOCAL_ONLY']]);
    expect(await query(targetDb.url, "SELECT count(*)::int AS n FROM steep_repl.audit_log WHERE event LIKE 'schema.%'")).toEqual([{ n: 0 }]);
  });

  it('auto creates missing tables whole: partitions, foreign keys, unique index as replica identity, unlogged (not replicated)', async () => {
    await source.query(`CREATE SCHEMA extra;
      CREATE TABLE extra.events (id bigint NOT NULL, at date NOT NULL, payload jsonb, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
      CREATE INDEX events_payload ON extra.events USING gin (payload);
      CREATE TABLE extra.events_2026 PARTITION OF extra.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
      CREATE TABLE extra."Parent" (id int PRIMARY KEY, up int REFERENCES extra."Parent");
      CREATE TABLE extra.child (id int PRIMARY KEY, parent_id int REFERENCES extra."Parent", v text NOT NULL UNIQUE, CHECK (v <> ''));
      ALTER TABLE extra.child REPLICA IDENTITY USING INDEX child_v_key;
      CREATE UNLOGGED TABLE extra.scratch (a int)`);
    const result = await syncSchema({ source, target, sourceNodeId: 'node_a', targetNodeId: 'node_b', mode: 'auto', schemas: ['extra'] });
    expect(result.outcome).toBe('applied');
    expect(result.ddl).toContain('CREATE SCHEMA IF NOT EXISTS extra');
    expect(result.ddl.slice(-2)).toEqual([
      'ALTER TABLE extra."Parent" ADD CONSTRAINT "Parent_up_fkey" FOREIGN KEY (up) REFERENCES extra."Parent"(id)',
      'ALTER TABLE extra.child ADD CONSTRAINT child_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES extra."Parent"(id)',
    ]);
    const after = await compareFingerprints(target, await fingerprintSet(source, ['extra']), ['extra']);
    expect(after.map((r) => [r.table_name, r.status])).toEqual([
      ['Parent', 'MATCH'],
      ['child', 'MATCH'],
      ['events', 'MATCH'],
      ['scratch', 'NOT_REPLICATED'],
    ]);
    const definitions = async (client: Client) =>
      (await client.query("SELECT table_name, definition FROM steep_repl.table_fingerprints(ARRAY['extra']) ORDER BY 1")).rows;
    expect(await definitions(target)).toEqual(await definitions(source));
    await target.query("INSERT INTO extra.events VALUES (1, '2026-05-01', '{}')");
  });

  it('a plan that cannot apply rolls back every step', async () => {
    await source.query('CREATE SCHEMA extra; CREATE TABLE extra.a (id int PRIMARY KEY); CREATE TABLE extra.b (id int PRIMARY KEY, v int)');
    // b's column w must go, but a view depends on it; a's new table must not survive the failure
    await target.query('CREATE SCHEMA extra; CREATE TABLE extra.b (id int PRIMARY KEY, v int, w int); CREATE VIEW extra.bw AS SELECT w FROM extra.b');
    const before = await fingerprintsOf(target);
    const err = await syncSchema({ source, target, sourceNodeId: 'node_a', targetNodeId: 'node_b', mode: 'auto', schemas: ['extra'] }).catch((e) => e);
    expect(err).toBeInstanceOf(SteepError);
    expect(err.exitCode).toBe(3);
    expect(err.message).toMatch(/extra\.b failed: cannot drop column w of table extra\.b because other objects depend on it/);
    expect(err.message).toContain('ALTER TABLE extra.b DROP COLUMN w');
    expect(await fingerprintsOf(target)).toEqual(before);
    expect(await query(targetDb.url, "SELECT to_regclass('extra.a') IS NULL AS gone")).toEqual([{ gone: true }]);
    expect(await query(targetDb.url, "SELECT event FROM steep_repl.audit_log WHERE event LIKE 'schema.%'")).toEqual([{ event: 'schema.mismatch_detected' }]);
  });

  it('refuses bad input with clear errors and writes nothing', async () => {
    await expect(fingerprintSet(source, ['no_such_schema'])).rejects.toMatchObject({
      code: 'SR004',
      message: `schema no_such_schema does not exist in database ${sourceDb.name}`,
    });
    await expect(fingerprintSet(source, ['steep_repl'])).rejects.toMatchObject({ code: 'SR004', message: expect.stringMatching(/never compares/) });
    await expect(compareFingerprints(target, [{ schema_name: 'x' }])).rejects.toMatchObject({ code: 'SR004', message: expect.stringMatching(/^malformed table fingerprint/) });
    await expect(target.query("SELECT * FROM steep_repl.compare_fingerprints('{}'::jsonb)")).rejects.toMatchObject({ code: 'SR004' });
    await expect(syncSchema({ source, target, sourceNodeId: 'a', targetNodeId: 'b', mode: 'sometimes' as 'auto' })).rejects.toMatchObject({ exitCode: 2 });
    await expect(source.query("SELECT steep_repl.capture_fingerprints('node_a', ARRAY['nope'])")).rejects.toMatchObject({ code: 'SR004' });
    await expect(source.query('SELECT steep_repl.capture_fingerprints()')).rejects.toMatchObject({ code: 'SR004', message: expect.stringMatching(/no local node/) });
    expect(await query(sourceDb.url, 'SELECT count(*)::int AS n FROM steep_repl.schema_fingerprints')).toEqual([{ n: 0 }]);
    expect(await query(targetDb.url, 'SELECT count(*)::int AS n FROM steep_repl.audit_log')).toEqual([{ n: 0 }]);
  });

  it('fingerprints see exactly what decides compatibility', async () => {
    await source.query(`CREATE SCHEMA extra;
      CREATE TABLE extra.t (id int PRIMARY KEY, a varchar(10), b numeric(10,2) DEFAULT 0 NOT NULL, c text COLLATE "C", g int GENERATED ALWAYS AS (id * 2) VIRTUAL);
      CREATE INDEX t_a ON extra.t (a)`);
    const [row] = (await source.query("SELECT * FROM steep_repl.table_fingerprints(ARRAY['extra'])")).rows;
    expect(row.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(row.column_count).toBe(5);
    expect(row.columns.map((c: { name: string; type: string }) => `${c.name} ${c.type}`)).toEqual([
      'id integer',
      'a character varying(10)',
      'b numeric(10,2)',
      'c text',
      'g integer',
    ]);
    expect(row.columns[2]).toMatchObject({ default: '0', not_null: true });
    expect(row.columns[3]).toMatchObject({ collation: 'pg_catalog."C"' });
    expect(row.columns[4]).toMatchObject({ generated: '(id * 2)', generated_kind: 'virtual' });
    expect(row.table_facts).toEqual({ kind: 'table', primary_key: ['id'], replica_identity: 'default', replica_identity_columns: null });
    // an index is not part of the fingerprint; the search_path of the caller is not either
    const fingerprint = row.fingerprint;
    await source.query('DROP INDEX extra.t_a; SET search_path = extra, public');
    const [again] = (await source.query("SELECT fingerprint FROM steep_repl.table_fingerprints(ARRAY['extra'])")).rows;
    await source.query('RESET search_path');
    expect(again.fingerprint).toBe(fingerprint);
    // a table that belongs to an extension comes with CREATE EXTENSION, not with schema sync
    await source.query('CREATE TABLE extra.extension_owned (x int); ALTER EXTENSION plpgsql ADD TABLE extra.extension_owned');
    const owned = (await source.query("SELECT count(*)::int AS n FROM steep_repl.table_fingerprints(ARRAY['extra']) WHERE table_name = 'extension_owned'")).rows;
    await source.query('ALTER EXTENSION plpgsql DROP TABLE extra.extension_owned');
    expect(owned).toEqual([{ n: 0 }]);
    // steep_repl's own and graphile-worker's tables are never fingerprinted
    const schemas = (await source.query('SELECT DISTINCT schema_name FROM steep_repl.table_fingerprints()')).rows.map((r) => r.schema_name);
    expect(schemas).toEqual(['extra']);
  });
});
