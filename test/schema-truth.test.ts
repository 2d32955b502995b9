// What the schema step says must be true of what replication will do:
// relations logical replication cannot carry (unlogged, foreign, materialized
// views) are NOT_REPLICATED, not MATCH, and an init says so or refuses;
// user types a column depends on are part of its fingerprint; a partitioned
// table is compared and replicated through its root, so each node may
// partition it its own way; manual mode names a table the target lacks.
import { clusterA, clusterB, query } from './support/clusters';
import { contentHashes, createInitPair, InitPair, initStatus, leftovers, sourceWrites, userTables, waitCaughtUp } from './support/init-pair';
import { createNodeDb, dropReplicationObjects, NodeDb, registerPair } from './support/node-pair';
import { dropDatabase } from './support/clusters';
import { AgentProcess, runCli, stopAllAgents } from './support/processes';
import { startWriter } from './support/writer';

jest.setTimeout(180000);

const schema = '"Truth ü"';

describe('schema truth: compare', () => {
  let source: NodeDb;
  let target: NodeDb;
  const cli = (...args: string[]) => runCli([...args, '--db', target.url]);

  beforeAll(async () => {
    source = await createNodeDb(clusterA(), 'truth_cmp_src', 'truth src');
    target = await createNodeDb(clusterB(), 'truth_cmp_tgt', 'truth "tgt"');
    await registerPair(source, target);
  });
  afterAll(async () => {
    for (const db of [source, target]) if (db) await dropDatabase(db.cluster, db.name).catch(() => undefined);
  });
  beforeEach(async () => {
    for (const db of [source, target]) await query(db.url, `DROP SCHEMA IF EXISTS ${schema} CASCADE; DROP SERVER IF EXISTS elsewhere CASCADE`);
  });

  it('lists unlogged and foreign tables, materialized views and unlogged partitions as NOT_REPLICATED, with the reason and what to do', async () => {
    const both = `CREATE SCHEMA ${schema};
      CREATE TABLE ${schema}."Kept ""t""" (id int PRIMARY KEY, v text);
      CREATE TABLE ${schema}.parted (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
      CREATE TABLE ${schema}.parted_1 PARTITION OF ${schema}.parted FOR VALUES FROM (0) TO (100)`;
    await query(source.url, `${both};
      CREATE UNLOGGED TABLE ${schema}."Scratch é" (id int PRIMARY KEY, v text);
      CREATE MATERIALIZED VIEW ${schema}.totals AS SELECT count(*) AS n FROM ${schema}."Kept ""t""";
      CREATE EXTENSION IF NOT EXISTS postgres_fdw;
      CREATE SERVER elsewhere FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'nowhere');
      CREATE FOREIGN TABLE ${schema}.remote (id int, v text) SERVER elsewhere;
      CREATE UNLOGGED TABLE ${schema}.parted_2 PARTITION OF ${schema}.parted FOR VALUES FROM (100) TO (200)`);
    // the target has the unlogged table too: still not replicated (the source's decides)
    await query(target.url, `${both}; CREATE UNLOGGED TABLE ${schema}."Scratch é" (id int PRIMARY KEY, v text)`);

    const compared = await cli('schema', 'compare', source.id, target.id, '--schemas', 'Truth ü', '--json');
    expect(compared.code).toBe(3);
    const tables = JSON.parse(compared.stdout).tables;
    expect(tables.map((t: any) => [t.table_name, t.status, t.blocking])).toEqual([
      ['Kept "t"', 'MATCH', false],
      ['Scratch é', 'NOT_REPLICATED', true],
      ['parted', 'NOT_REPLICATED', true],
      ['remote', 'NOT_REPLICATED', true],
      ['totals', 'NOT_REPLICATED', true],
    ]);
    const byName = Object.fromEntries(tables.map((t: any) => [t.table_name, t.differences[0]]));
    expect(byName['Scratch é']).toEqual({
      kind: 'not_replicated',
      reason: 'unlogged table',
      on_target: true,
      detail:
        'unlogged table: logical replication cannot carry its rows (its changes are not written to the WAL); ' +
        'to replicate it: ALTER TABLE "Truth ü"."Scratch é" SET LOGGED on the source',
    });
    expect(byName.parted).toMatchObject({ reason: 'partition "Truth ü".parted_2 is unlogged', on_target: true });
    expect(byName.remote).toMatchObject({ reason: 'foreign table', on_target: false });
    expect(byName.remote.detail).toMatch(/IMPORT FOREIGN SCHEMA/);
    expect(byName.totals).toMatchObject({ reason: 'materialized view', on_target: false });
    expect(byName.totals.detail).toMatch(/REFRESH MATERIALIZED VIEW/);

    const human = await cli('schema', 'compare', source.id, target.id, '--schemas', 'Truth ü');
    expect(human.code).toBe(3);
    expect(human.stdout).toMatch(/"Truth ü"\."Scratch é"\s+NOT_REPLICATED\s+unlogged table: logical replication cannot carry its rows/);
    expect(human.stdout).toContain('5 tables: 1 match, 0 mismatch, 0 only on truth src, 0 only on truth "tgt", 4 not replicated');

    // strict refuses with the list and what to do; auto and manual warn and change nothing here
    const strict = await cli('schema', 'sync', target.id, '--from', source.id, '--schemas', 'Truth ü');
    expect(strict.code).toBe(3);
    expect(strict.stderr).toContain('"Truth ü"."Scratch é": unlogged table: logical replication cannot carry its rows');
    expect(strict.stderr).toMatch(/hint: make those tables logged on the source \(ALTER TABLE \.\.\. SET LOGGED\), or initialize without/);
    const before = await query(target.url, 'SELECT table_name, fingerprint FROM steep_repl.table_fingerprints() ORDER BY 1');
    const auto = await cli('schema', 'sync', target.id, '--from', source.id, '--schemas', 'Truth ü', '--mode', 'auto', '--json');
    expect(auto.code).toBe(0);
    expect(JSON.parse(auto.stdout)).toMatchObject({
      outcome: 'match',
      ddl: [],
      notReplicated: [
        { schema_name: 'Truth ü', table_name: 'Scratch é', reason: 'unlogged table' },
        { schema_name: 'Truth ü', table_name: 'parted', reason: 'partition "Truth ü".parted_2 is unlogged' },
        { schema_name: 'Truth ü', table_name: 'remote', reason: 'foreign table' },
        { schema_name: 'Truth ü', table_name: 'totals', reason: 'materialized view' },
      ],
    });
    const manual = await cli('schema', 'sync', target.id, '--from', source.id, '--schemas', 'Truth ü', '--mode', 'manual', '--yes');
    expect(manual.code).toBe(0);
    expect(manual.stderr).toContain('warning: not replicated (logical replication cannot carry them), an init goes ahead without: "Truth ü"."Scratch é" (unlogged table)');
    expect(await query(target.url, 'SELECT table_name, fingerprint FROM steep_repl.table_fingerprints() ORDER BY 1')).toEqual(before);

    // the source's replicated_tables leaves exactly those out
    expect((await query(source.url, 'SELECT label FROM steep_repl.replicated_tables()')).map((r) => r.label)).toEqual(['"Truth ü"."Kept ""t"""']);
    // a logged table that is unlogged on the target differs (a crash there empties it), and auto makes it logged
    await query(source.url, `ALTER TABLE ${schema}."Scratch é" SET LOGGED`);
    const persistence = await cli('schema', 'compare', source.id, target.id, '--schemas', 'Truth ü', '--json');
    const scratch = JSON.parse(persistence.stdout).tables.find((t: any) => t.table_name === 'Scratch é');
    expect(scratch).toMatchObject({ status: 'MISMATCH', differences: [{ kind: 'table_persistence', target: 'unlogged table' }] });
    const logged = await cli('schema', 'sync', target.id, '--from', source.id, '--schemas', 'Truth ü', '--mode', 'auto', '--json');
    expect(logged.code).toBe(0);
    expect(JSON.parse(logged.stdout).ddl).toEqual(['ALTER TABLE "Truth ü"."Scratch é" SET LOGGED']);
  });

  it('fingerprints the user types a column depends on: enum labels in order, domains, composites, arrays of them', async () => {
    const typed = (labels: string, check: string, attr: string) => `CREATE SCHEMA ${schema};
      CREATE TYPE ${schema}."Mood ü" AS ENUM (${labels});
      CREATE DOMAIN ${schema}.qty AS integer NOT NULL DEFAULT 1 CHECK (${check});
      CREATE TYPE ${schema}.point2 AS (x integer, ${attr});
      CREATE DOMAIN ${schema}.moods AS ${schema}."Mood ü"[];
      CREATE TABLE ${schema}.feelings (id int PRIMARY KEY, m ${schema}."Mood ü", ms ${schema}."Mood ü"[], q ${schema}.qty, p ${schema}.point2[], d ${schema}.moods);
      CREATE TABLE ${schema}.plain (id int PRIMARY KEY, v text)`;
    await query(source.url, typed(`'happy', 'sad', 'ok'`, 'VALUE > 0', 'y integer'));
    await query(target.url, typed(`'happy', 'sad'`, 'VALUE >= 0', 'y bigint'));

    const compared = await cli('schema', 'compare', source.id, target.id, '--schemas', 'Truth ü', '--json');
    expect(compared.code).toBe(3);
    const [feelings, plain] = JSON.parse(compared.stdout).tables;
    expect(plain).toMatchObject({ table_name: 'plain', status: 'MATCH' });
    expect(feelings.status).toBe('MISMATCH');
    expect(feelings.differences.map((d: any) => [d.kind, d.column, d.type, d.detail])).toEqual([
      ['column_user_type', 'm', '"Truth ü"."Mood ü"', `column m: type "Truth ü"."Mood ü" labels differ: source ('happy', 'sad', 'ok'), target ('happy', 'sad')`],
      ['column_user_type', 'ms', '"Truth ü"."Mood ü"', `column ms: type "Truth ü"."Mood ü" labels differ: source ('happy', 'sad', 'ok'), target ('happy', 'sad')`],
      [
        'column_user_type',
        'q',
        '"Truth ü".qty',
        'column q: type "Truth ü".qty differs: source domain over integer DEFAULT 1 NOT NULL CHECK ((VALUE > 0)), ' +
          'target domain over integer DEFAULT 1 NOT NULL CHECK ((VALUE >= 0))',
      ],
      [
        'column_user_type',
        'p',
        '"Truth ü".point2',
        'column p: type "Truth ü".point2 differs: source composite (x integer, y integer), target composite (x integer, y bigint)',
      ],
      ['column_user_type', 'd', '"Truth ü"."Mood ü"', `column d: type "Truth ü"."Mood ü" labels differ: source ('happy', 'sad', 'ok'), target ('happy', 'sad')`],
    ]);
    // the same labels in another order are another enum
    await query(target.url, `ALTER TYPE ${schema}."Mood ü" ADD VALUE 'ok' BEFORE 'sad'`);
    const reordered = JSON.parse((await cli('schema', 'compare', source.id, target.id, '--schemas', 'Truth ü', '--json')).stdout).tables[0];
    expect(reordered.differences[0].detail).toBe(
      `column m: type "Truth ü"."Mood ü" labels differ: source ('happy', 'sad', 'ok'), target ('happy', 'ok', 'sad')`,
    );
    // defined alike on both: MATCH
    for (const db of [source, target]) await query(db.url, `DROP SCHEMA ${schema} CASCADE`);
    await query(source.url, typed(`'happy', 'sad'`, 'VALUE > 0', 'y integer'));
    await query(target.url, typed(`'happy', 'sad'`, 'VALUE > 0', 'y integer'));
    const same = await cli('schema', 'compare', source.id, target.id, '--schemas', 'Truth ü');
    expect(same.stdout).toContain('2 tables: 2 match, 0 mismatch');
    expect(same.code).toBe(0);
    const [row] = await query(source.url, `SELECT columns FROM steep_repl.table_fingerprints(ARRAY['Truth ü']) WHERE table_name = 'feelings'`);
    expect(row.columns[1].types).toEqual({ '"Truth ü"."Mood ü"': { kind: 'enum', labels: ['happy', 'sad'] } });
    expect(row.columns[5].types).toEqual({
      '"Truth ü".moods': { kind: 'domain', base: '"Truth ü"."Mood ü"[]', not_null: false },
      '"Truth ü"."Mood ü"': { kind: 'enum', labels: ['happy', 'sad'] },
    });
  });

  it('compares a partitioned table by its root: partitioned another way or not at all MATCHes, partitions are not listed', async () => {
    await query(source.url, `CREATE SCHEMA ${schema};
      CREATE TABLE ${schema}."Parted ü" (id int PRIMARY KEY, at date NOT NULL, v text) PARTITION BY RANGE (id);
      CREATE TABLE ${schema}."Parted ü 1" PARTITION OF ${schema}."Parted ü" FOR VALUES FROM (MINVALUE) TO (1000);
      CREATE TABLE ${schema}."Parted ü 2" PARTITION OF ${schema}."Parted ü" FOR VALUES FROM (1000) TO (MAXVALUE);
      CREATE TABLE ${schema}.flat (id int PRIMARY KEY, v text)`);
    await query(target.url, `CREATE SCHEMA ${schema};
      CREATE TABLE ${schema}."Parted ü" (id int PRIMARY KEY, at date NOT NULL, v text) PARTITION BY HASH (id);
      CREATE TABLE ${schema}.h0 PARTITION OF ${schema}."Parted ü" FOR VALUES WITH (MODULUS 2, REMAINDER 0);
      CREATE TABLE ${schema}.h1 PARTITION OF ${schema}."Parted ü" FOR VALUES WITH (MODULUS 2, REMAINDER 1);
      CREATE TABLE ${schema}.flat (id int PRIMARY KEY, v text) PARTITION BY LIST (id);
      CREATE TABLE ${schema}.flat_all PARTITION OF ${schema}.flat DEFAULT`);
    const compared = await cli('schema', 'compare', source.id, target.id, '--schemas', 'Truth ü', '--json');
    expect(JSON.parse(compared.stdout).tables.map((t: any) => [t.table_name, t.status])).toEqual([
      ['Parted ü', 'MATCH'],
      ['flat', 'MATCH'],
    ]);
    expect(compared.code).toBe(0);
    const strict = await cli('schema', 'sync', target.id, '--from', source.id, '--schemas', 'Truth ü');
    expect(strict).toMatchObject({ code: 0 });
    // the root's columns still count
    await query(target.url, `ALTER TABLE ${schema}."Parted ü" ALTER COLUMN v TYPE varchar(10)`);
    const differs = JSON.parse((await cli('schema', 'compare', source.id, target.id, '--schemas', 'Truth ü', '--json')).stdout).tables[0];
    expect(differs).toMatchObject({ status: 'MISMATCH', differences: [{ kind: 'column_type', column: 'v' }] });
    // auto aligns the root and keeps the target's own partitions
    const auto = await cli('schema', 'sync', target.id, '--from', source.id, '--schemas', 'Truth ü', '--mode', 'auto', '--json');
    expect(JSON.parse(auto.stdout).ddl).toEqual(['ALTER TABLE "Truth ü"."Parted ü" ALTER COLUMN v TYPE text USING v::text']);
    expect((await query(target.url, `SELECT relname FROM pg_partition_tree('${schema}."Parted ü"') JOIN pg_class ON oid = relid WHERE isleaf ORDER BY 1`)).map((r) => r.relname)).toEqual(['h0', 'h1']);
    // a partition asked for by name points at its root
    const leaf = await cli('schema', 'diff', source.id, target.id, `${schema}."Parted ü 1"`);
    expect(leaf.code).toBe(2);
    expect(leaf.stderr).toContain('table "Truth ü"."Parted ü 1" is a partition of "Truth ü"."Parted ü": a partitioned table is compared and replicated through its root');
  });

  it('manual mode names a table the target lacks and what to do, before asking or changing anything', async () => {
    await query(source.url, `CREATE SCHEMA ${schema}; CREATE TABLE ${schema}."Missing ""one""" (id int PRIMARY KEY); CREATE TABLE ${schema}.here (id int PRIMARY KEY, v text DEFAULT 'x')`);
    await query(target.url, `CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.here (id int PRIMARY KEY, v text)`);
    const manual = await cli('schema', 'sync', target.id, '--from', source.id, '--schemas', 'Truth ü', '--mode', 'manual', '--yes');
    expect(manual.code).toBe(3);
    expect(manual.stderr).toContain(
      'error: 1 table of node truth src is missing on node truth "tgt", which cannot receive its rows: "Truth ü"."Missing ""one"""',
    );
    expect(manual.stderr).toContain(`hint: create it on node truth "tgt" (steep-repl schema sync 'truth "tgt"' --from 'truth src' --mode auto --dry-run prints the DDL), or use schema sync mode auto; nothing was changed`);
    expect(manual.stderr).not.toMatch(/\[y\/N\]/);
    expect(await query(target.url, `SELECT to_regclass('${schema}."Missing ""one"""') AS t`)).toEqual([{ t: null }]);
  });
});
