// What the schema step says must be true of what replication will do:
// relations logical replication cannot carry (unlogged, foreign, materialized
// views) are NOT_REPLICATED, not MATCH, and an init says so or refuses;
// user types a column depends on are part of its fingerprint; a partitioned
// table is compared and replicated through its root, so each node may
// partition it its own way; manual mode names a table the target lacks.
import { clusterA, clusterB, query } from './support/clusters';
import { contentHashes, createInitPair, InitPair, initStatus, leftovers, sourceWrites, userTables, waitCaughtUp } from './support/init-pair';
import { createNodeDb, NodeDb, registerPair } from './support/node-pair';
import { dropDatabase } from './support/clusters';
import { AgentProcess, runCli, stopAllAgents } from './support/processes';
import { startWriter } from './support/writer';
import { waitUntil } from './support/wait';
import { ClusterWatch } from '../tui/cluster-watch';
import { renderInitOverlay } from '../tui/init-overlay';

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
    expect(strict.stderr).toMatch(/hint: logical replication cannot carry the NOT_REPLICATED relations: do what each line says .*or initialize without them in schema sync mode auto or manual/);
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
    // auto does not alter types: it refuses, naming the type, and changes nothing
    const auto = await cli('schema', 'sync', target.id, '--from', source.id, '--schemas', 'Truth ü', '--mode', 'auto');
    expect(auto.code).toBe(3);
    expect(auto.stderr).toContain(`tables still differ: "Truth ü".feelings: column m: type "Truth ü"."Mood ü" labels differ`);
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

describe('schema truth: init', () => {
  let pair: InitPair;
  let agent: AgentProcess;
  const feelings = 'public.feelings';
  const missing = 'public."Missing ü"';
  const start = (...extra: string[]) => runCli(['node', 'start', pair.target.id, '--from', pair.source.id, ...extra, '--db', pair.target.url]);

  beforeAll(async () => {
    pair = await createInitPair({ tag: 'truth_init', sourceCluster: clusterA(), targetCluster: clusterB(), sourceId: 'Truth Ä src', targetId: 'truth "B" tgt', rows: 2000 });
    const both = (labels: string) => `CREATE UNLOGGED TABLE public."Scratch ü" (id int PRIMARY KEY, v text);
      CREATE TYPE public.mood AS ENUM (${labels});
      CREATE TABLE ${feelings} (id int PRIMARY KEY, m public.mood NOT NULL)`;
    await query(pair.source.url, `${both(`'happy', 'sad', 'ok'`)};
      CREATE TABLE ${missing} (id int PRIMARY KEY, v text);
      INSERT INTO public."Scratch ü" SELECT g, 's' || g FROM generate_series(1, 100) g;
      INSERT INTO ${feelings} SELECT g, (ARRAY['happy', 'sad', 'ok'])[1 + g % 3]::public.mood FROM generate_series(1, 300) g;
      INSERT INTO ${missing} SELECT g, 'm' || g FROM generate_series(1, 50) g;
      ANALYZE`);
    await query(pair.target.url, both(`'happy', 'sad'`));
    agent = await AgentProcess.start(pair.target.url);
  });
  afterAll(async () => {
    await stopAllAgents();
    await pair?.drop();
  });

  async function expectRefusedAndCancel(error: RegExp): Promise<void> {
    const status = await initStatus(pair.target);
    expect(status).toMatchObject({ state: 'failed', progress: { failure_kind: 'schema_mismatch' } });
    expect(status.progress.error).toMatch(error);
    // refused before anything was created on either side
    expect(await leftovers(pair)).toEqual({ subscriptions: [], slots: [], publications: [] });
    expect((await runCli(['node', 'cancel', pair.target.id, '--db', pair.target.url])).code).toBe(0);
  }

  it('strict refuses an unlogged table, an enum whose labels differ and a missing table, naming each, before anything is created', async () => {
    const strict = await start();
    expect(strict.code).toBe(3);
    expect(strict.stderr).toContain(`${feelings}: column m: type public.mood labels differ: source ('happy', 'sad', 'ok'), target ('happy', 'sad')`);
    expect(strict.stderr).toContain(`${missing}: table ${missing} exists on the source only`);
    expect(strict.stderr).toContain(
      'public."Scratch ü": unlogged table: logical replication cannot carry its rows (its changes are not written to the WAL); ' +
        'to replicate it: ALTER TABLE public."Scratch ü" SET LOGGED on the source',
    );
    await expectRefusedAndCancel(/an unlogged table: ALTER TABLE \.\.\. SET LOGGED on the source\), or initialize without them in schema sync mode auto or manual/);
  });

  it('manual names the table the target lacks and what to do: from node start before anything is queued, from SQL in the agent', async () => {
    const audit = "SELECT count(*)::int AS n FROM steep_repl.audit_log WHERE event LIKE 'init.%'";
    const auditBefore = await query(pair.target.url, audit);
    const manual = await start('--schema-sync', 'manual', '--yes');
    expect(manual.code).toBe(3);
    expect(manual.stderr).toContain(`error: 1 table of node Truth Ä src is missing on node truth "B" tgt, which cannot receive its rows: ${missing}`);
    expect(manual.stderr).toContain(`hint: create it on node truth "B" tgt (steep-repl schema sync 'truth "B" tgt' --from 'Truth Ä src' --mode auto --dry-run prints the DDL)`);
    expect(await initStatus(pair.target)).toMatchObject({ state: 'uninitialized', progress: null, job: null });
    expect(await query(pair.target.url, audit)).toEqual(auditBefore);

    await query(pair.target.url, `SELECT steep_repl.start_init($1, $2, NULL, '{"schema_sync": "manual"}')`, [pair.target.id, pair.source.id]);
    await waitUntil('the agent to refuse the init', async () => (await initStatus(pair.target)).state === 'failed', 60000);
    await expectRefusedAndCancel(/1 table of node Truth Ä src is missing on node truth "B" tgt, which cannot receive its rows: public\."Missing ü"/);
  });

  it('auto goes ahead without the unlogged table, says so in the plan, status and final report, and ends identical under writes', async () => {
    await query(pair.target.url, "ALTER TYPE public.mood ADD VALUE 'ok'");
    const writer = startWriter(pair.source.url, (n) => [
      ...sourceWrites(2000)(n),
      { text: `INSERT INTO ${feelings} VALUES ($1, 'ok')`, values: [1_000_000 + n] },
      { text: 'INSERT INTO public."Scratch ü" VALUES ($1, $2)', values: [1_000_000 + n, 'not replicated'] },
    ]);
    const auto = await start('--schema-sync', 'auto');
    const { transactions } = await writer.stop();
    expect(auto.stdout).toContain(`${pair.target.id} is synchronized with ${pair.source.id}`);
    expect(auto.stderr).toContain('warning: not replicated (logical replication cannot carry them): public."Scratch ü" (unlogged table)');
    expect(auto.code).toBe(0);
    expect(transactions).toBeGreaterThan(10);

    const notReplicated = [{ schema_name: 'public', table_name: 'Scratch ü', label: 'public."Scratch ü"', reason: 'unlogged table' }];
    const status = await initStatus(pair.target);
    expect(status).toMatchObject({ state: 'synchronized', progress: { tables_total: 7, tables_done: 7, not_replicated: notReplicated } });
    expect(status.tables.map((t: any) => t.label)).toEqual([...userTables, feelings, missing].sort((a, b) => (a.replace(/"/g, '') < b.replace(/"/g, '') ? -1 : 1)));
    const [completed] = await query(pair.target.url, "SELECT details FROM steep_repl.audit_log WHERE event = 'init.completed' AND node_id = $1", [pair.target.id]);
    expect(completed.details.not_replicated).toEqual(notReplicated);
    expect(await agent.waitForEvent('init.not_replicated')).toMatchObject({ relations: notReplicated });
    const progress = await runCli(['node', 'progress', pair.target.id, '--db', pair.target.url]);
    expect(progress.stdout).toContain('not replicated: public."Scratch ü" (unlogged table)');
    // and the live view's detail overlay, as it reads the node
    const watch = new ClusterWatch({ db: pair.target.url, applicationName: 'steep-repl test schema truth' });
    await watch.start();
    try {
      watch.watchDetail(pair.target.id);
      const view = await waitUntil('the live view to read the init', () => watch.node(pair.target.id)?.progress ?? undefined, 10000, 50);
      expect(view.not_replicated).toEqual(notReplicated);
      const pieces: string[] = [];
      renderInitOverlay({ put: (_x, _y, text) => void pieces.push(text) }, { x: 0, y: 0, width: 120, height: 40 }, watch.node(pair.target.id)!);
      expect(pieces).toContain('1 not replicated: public."Scratch ü" (unlogged table)');
    } finally {
      await watch.stop();
    }
    const published = await query(pair.source.url, 'SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2', [pair.replicationName]);
    expect(published.map((p) => p.tablename)).not.toContain('Scratch ü');

    await waitCaughtUp(pair);
    const tables = [...userTables, feelings, missing];
    expect(await contentHashes(pair.target.url, tables)).toEqual(await contentHashes(pair.source.url, tables));
    expect(await query(pair.target.url, 'SELECT count(*)::int AS n FROM public."Scratch ü"')).toEqual([{ n: 0 }]);
  });
});

describe('schema truth: partitioned differently', () => {
  let pair: InitPair;
  const parted = 'public."Parted ü"';
  const tables = [...userTables, 'public.flat', parted];

  beforeAll(async () => {
    pair = await createInitPair({ tag: 'truth_part', sourceCluster: clusterA(), targetCluster: clusterB(), sourceId: 'Parts Ä src', targetId: 'parts "B" tgt', rows: 2000 });
    await query(pair.source.url, `CREATE TABLE ${parted} (id int PRIMARY KEY, v text NOT NULL) PARTITION BY RANGE (id);
      CREATE TABLE public."Parted ü low" PARTITION OF ${parted} FOR VALUES FROM (MINVALUE) TO (5000);
      CREATE TABLE public."Parted ü high" PARTITION OF ${parted} FOR VALUES FROM (5000) TO (MAXVALUE);
      CREATE TABLE public.flat (id int PRIMARY KEY, v text);
      INSERT INTO ${parted} SELECT g, 'p' || g FROM generate_series(1, 9000) g;
      INSERT INTO public.flat SELECT g, 'f' || g FROM generate_series(1, 500) g;
      ANALYZE`);
    await query(pair.target.url, `CREATE TABLE ${parted} (id int PRIMARY KEY, v text NOT NULL) PARTITION BY HASH (id);
      CREATE TABLE public.h0 PARTITION OF ${parted} FOR VALUES WITH (MODULUS 3, REMAINDER 0);
      CREATE TABLE public.h1 PARTITION OF ${parted} FOR VALUES WITH (MODULUS 3, REMAINDER 1);
      CREATE TABLE public.h2 PARTITION OF ${parted} FOR VALUES WITH (MODULUS 3, REMAINDER 2);
      CREATE TABLE public.flat (id int PRIMARY KEY, v text) PARTITION BY LIST (id);
      CREATE TABLE public.flat_rest PARTITION OF public.flat DEFAULT`);
  });
  afterAll(async () => {
    await stopAllAgents();
    await pair?.drop();
  });

  it('range on the source, hash on the target (and plain into partitioned): strict initializes through the root, identical under writes', async () => {
    const agent = await AgentProcess.start(pair.target.url);
    const writer = startWriter(pair.source.url, (n) => [
      ...sourceWrites(2000)(n),
      { text: `INSERT INTO ${parted} VALUES ($1, 'new')`, values: [1_000_000 + n] },
      // moves a row from one of the source's partitions to the other
      { text: `UPDATE ${parted} SET id = id + 100000, v = v || '+' WHERE id = $1`, values: [1 + (n % 4000)] },
      { text: 'UPDATE public.flat SET v = v || $2 WHERE id = $1', values: [1 + (n % 500), 'u'] },
    ]);
    const result = await runCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--db', pair.target.url]);
    const { transactions } = await writer.stop();
    expect(result.stderr).not.toMatch(/error/);
    expect(result.code).toBe(0);
    expect(transactions).toBeGreaterThan(10);

    const status = await initStatus(pair.target);
    expect(status.progress).toMatchObject({ tables_total: 7, tables_done: 7, not_replicated: [] });
    // one progress row per root, none per partition
    expect(status.tables.map((t: any) => t.label).sort()).toEqual([...tables].sort());
    for (const t of status.tables) expect(t).toMatchObject({ state: 'done', percent: 100 });
    // the source publishes through its roots; the target's subscription lists its own roots
    const published = await query(pair.source.url, 'SELECT tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1', [pair.replicationName]);
    expect(published.map((p) => p.tablename)).toEqual(['Order "Items" é', 'Parted ü', 'accounts', 'docs', 'events', 'flat', 'slow'].sort());
    const subscribed = await query(
      pair.target.url,
      `SELECT format('%I.%I', n.nspname, c.relname) AS rel, r.srsubstate AS state
         FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid
         JOIN pg_class c ON c.oid = r.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE s.subname = $1 ORDER BY 1`,
      [pair.replicationName],
    );
    expect(subscribed.map((r) => r.rel).sort()).toEqual([...tables].sort());
    expect(new Set(subscribed.map((r) => r.state))).toEqual(new Set(['r']));

    await waitCaughtUp(pair);
    expect(await contentHashes(pair.target.url, tables)).toEqual(await contentHashes(pair.source.url, tables));
    // the rows live in the target's own partitions
    const spread = await query(pair.target.url, `SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM ${parted} GROUP BY 1 ORDER BY 1`);
    expect(spread.map((s) => s.part)).toEqual(['h0', 'h1', 'h2']);
    for (const s of spread) expect(s.n).toBeGreaterThan(2000);
    expect(await query(pair.target.url, 'SELECT DISTINCT tableoid::regclass::text AS part FROM public.flat')).toEqual([{ part: 'flat_rest' }]);
    await agent.stop();
  });
});
