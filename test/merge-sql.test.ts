// The merge's SQL alone, as psql and the job see it (no agent): every
// refusal of start_merge, merge_node_begin, resolve_merge_conflicts and the
// conflict check changes nothing; names with spaces, quotes, capitals and
// unicode (schemas, tables, node ids) resolve; a run starts with its tables
// and its job; the job's calls (claim, report, record, finish) and each
// node's begin → step → finish, a resumed begin changing nothing; cancel on
// A and on B; merge_status / latest_merge; the progress NOTIFY stays under
// 8000 bytes.
import { Client } from 'pg';
import { clusterA, clusterB, dropDatabase, query, refusal, withClient } from './support/clusters';
import { createNodeDb, NodeDb, registerIn, registerPair } from './support/node-pair';
import { ChannelRecorder } from './support/notifications';

jest.setTimeout(60000);

const odd = '"Sales ünit"."Order ""Items"" é"';

const schemaSql = `
  CREATE SCHEMA "Sales ünit";
  CREATE TABLE "Sales ünit"."Order ""Items"" é" (id int PRIMARY KEY, v text NOT NULL, "Updated At" timestamptz,
                                                  doubled int GENERATED ALWAYS AS (id * 2) STORED);
  CREATE TABLE public.docs (id int PRIMARY KEY, body text, stamp text);
  CREATE TABLE public.accounts (id int PRIMARY KEY, at date);
  CREATE SCHEMA "Other Schema";
  CREATE TABLE "Other Schema".accounts (id int PRIMARY KEY, at date);
  CREATE TABLE public.pairs ("K" text, n int, v text, PRIMARY KEY ("K", n));
  INSERT INTO "Sales ünit"."Order ""Items"" é" (id, v) SELECT i, 'v ' || i FROM generate_series(1, 20) i;
`;

// What the merge's SQL may change on a node's database (heartbeat fields left out).
async function stateOf(url: string): Promise<unknown> {
  const [row] = await query(
    url,
    `SELECT (SELECT coalesce(jsonb_agg(to_jsonb(n) - 'last_seen' - 'status' ORDER BY node_id), '[]') FROM steep_repl.nodes n) AS nodes,
            (SELECT coalesce(jsonb_agg(to_jsonb(r) - 'updated_at' ORDER BY merge_id), '[]') FROM steep_repl.merge_runs r) AS runs,
            (SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY merge_id, schema_name, table_name), '[]') FROM steep_repl.merge_tables t) AS tables,
            (SELECT coalesce(jsonb_agg(to_jsonb(c) ORDER BY merge_id, schema_name, table_name, key), '[]') FROM steep_repl.merge_conflicts c) AS conflicts,
            (SELECT coalesce(jsonb_agg(to_jsonb(p) - 'updated_at' ORDER BY node_id), '[]') FROM steep_repl.init_progress p) AS progress,
            (SELECT count(*)::int FROM steep_repl.init_table_progress) AS table_progress,
            (SELECT count(*)::int FROM steep_repl.node_divergence) AS divergence,
            (SELECT coalesce(jsonb_agg(jsonb_build_object('key', key, 'payload', payload, 'max_attempts', max_attempts) ORDER BY id), '[]')
               FROM graphile_worker._private_jobs) AS jobs,
            (SELECT count(*)::int FROM steep_repl.audit_log) AS audit_rows`,
  );
  return row;
}

const one = async (url: string, sql: string, params: unknown[] = []): Promise<any> => (await query(url, sql, params))[0]?.r;

const lastEvent = async (url: string, event: string): Promise<any> =>
  (await query(url, 'SELECT node_id, from_state, to_state, details FROM steep_repl.audit_log WHERE event = $1 ORDER BY audit_id DESC LIMIT 1', [event]))[0];

const eventCount = async (url: string, event: string): Promise<number> =>
  (await query(url, 'SELECT count(*)::int AS n FROM steep_repl.audit_log WHERE event = $1', [event]))[0].n;

const jobs = (url: string) =>
  query(url, 'SELECT t.identifier AS task, j.payload, j.key, j.max_attempts FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id ORDER BY j.id');

const clearJobs = (url: string) => query(url, 'DELETE FROM graphile_worker._private_jobs');

const stateOfNode = async (url: string, node: string): Promise<string> =>
  (await query(url, 'SELECT init_state FROM steep_repl.nodes WHERE node_id = $1', [node]))[0].init_state;

describe('merge SQL', () => {
  let a: NodeDb;
  let b: NodeDb;
  const third = 'merge_sql third "node"';

  beforeAll(async () => {
    a = await createNodeDb(clusterA(), 'merge_sql', 'merge_sql Nöde "A" ü');
    b = await createNodeDb(clusterB(), 'merge_sql', 'merge_sql node B ✓');
    await registerPair(a, b);
    await registerIn(a, { ...b, id: third, name: 'nowhere' });
    for (const db of [a, b]) await query(db.url, schemaSql);
  });
  afterAll(async () => {
    for (const db of [a, b]) if (db) await dropDatabase(db.cluster, db.name);
  });

  const start = (options: unknown = {}, nodeA = a.id, nodeB = b.id, url = a.url) =>
    one(url, 'SELECT steep_repl.start_merge($1, $2, $3) AS r', [nodeA, nodeB, options]);

  it('start_merge refuses bad input, wrong places and states with a clear SQLSTATE, changing nothing', async () => {
    expect(await one(a.url, 'SELECT steep_repl.latest_merge($1) AS r', [a.id])).toBeNull();
    await query(a.url, 'CREATE TABLE public."no key" (n int)');
    const before = await stateOf(a.url);
    const cases: Array<[unknown[], string, RegExp, RegExp?]> = [
      [['no such node', b.id, { analyze: true }], 'SR001', /unknown node 'no such node'/],
      [[a.id, 'no such node', { analyze: true }], 'SR001', /unknown node 'no such node'/],
      [[b.id, a.id, { analyze: true }], 'SR004', /start_merge runs on the database of node A "merge_sql node B ✓"; this database is node "merge_sql Nöde ""A"" ü"/, /connect to/],
      [[a.id, a.id, { analyze: true }], 'SR004', /node "merge_sql Nöde ""A"" ü" cannot be merged with itself/],
      [[a.id, b.id, { colour: 'blue', analyze: true }], 'SR004', /unknown merge option 'colour'/, /merge options: strategy, analyze/],
      [[a.id, b.id, '[]'], 'SR004', /merge options are a JSON object/],
      [[a.id, b.id, { analyze: true, strategy: 'prefer-a' }], 'SR004', /an analysis takes no strategy/],
      [[a.id, b.id, {}], 'SR004', /name what to do: analyze, or a strategy/, /--analyze/],
      [[a.id, b.id, { analyze: 'yes' }], 'SR004', /option analyze must be true or false/],
      [[a.id, b.id, { strategy: 'newest' }], 'SR004', /option strategy must be prefer-a, prefer-b, last-modified, manual, got "newest"/],
      [[a.id, b.id, { analyze: true, dry_run: true }], 'SR004', /a dry run shows what a strategy would write/],
      [[a.id, b.id, { strategy: 'prefer-a', apply: true }], 'SR004', /apply applies the resolutions of a manual merge: it takes strategy manual, not prefer-a/],
      [[a.id, b.id, { strategy: 'manual', apply: true, dry_run: true }], 'SR004', /apply and dry_run do not go together/],
      [[a.id, b.id, { strategy: 'prefer-b', column: 'at' }], 'SR004', /option column is for strategy last-modified only/],
      [[a.id, b.id, { strategy: 'last-modified' }], 'SR004', /strategy last-modified needs the column/],
      [[a.id, b.id, { strategy: 'last-modified', column: '' }], 'SR004', /option column must be a column name/],
      [[a.id, b.id, { strategy: 'last-modified', column: 'stamp', tables: ['docs'] }], 'SR004', /public\.docs has column stamp of type text/],
      [[a.id, b.id, { strategy: 'last-modified', column: 'Updated At', tables: [odd, 'public.accounts'] }], 'SR004', /public\.accounts has no column "Updated At"/],
      [[a.id, b.id, { analyze: true, tables: ['public.nope'] }], 'SR004', /table 'public.nope' is not among the tables node "merge_sql Nöde ""A"" ü" can replicate/, /public\.accounts/],
      [[a.id, b.id, { analyze: true, tables: ['accounts'] }], 'SR004', /table name 'accounts' is ambiguous: "Other Schema"\.accounts, public\.accounts/, /qualify/],
      [[a.id, b.id, { analyze: true, tables: ['a.b.c'] }], 'SR004', /invalid table name 'a\.b\.c'/],
      [[a.id, b.id, { analyze: true, tables: [] }], 'SR004', /tables must be a non-empty list/],
      [[a.id, b.id, { analyze: true, tables: ['docs'], schema: 'public' }], 'SR004', /name tables or a schema, not both/],
      [[a.id, b.id, { analyze: true, schema: 'nope' }], 'SR004', /unknown schema 'nope'/],
      [[a.id, b.id, { analyze: true }], 'SR004', /table\(s\) without a primary key: public\."no key": a merge matches rows by primary key/],
      [[a.id, b.id, { analyze: true, schema: 'public' }], 'SR004', /public\."no key": a merge matches rows by primary key/],
      [[a.id, b.id, { analyze: true, tables: ['docs'], timeout: 0 }], 'SR004', /option timeout must be from 1 to 86400 seconds/],
      [[a.id, b.id, { analyze: true, tables: ['docs'], timeout: 86401 }], 'SR004', /option timeout must be from 1 to 86400 seconds/],
      [[a.id, b.id, { analyze: true, tables: ['docs'], timeout: 'soon' }], 'SR004', /option timeout must be a number of seconds or an interval/],
      [[a.id, b.id, { strategy: 'manual', apply: true, tables: ['docs'] }], 'SR003', /no conflicts of nodes "merge_sql Nöde ""A"" ü" and "merge_sql node B ✓" are recorded: record them first/, /--strategy manual/],
    ];
    for (const [params, code, message, hint] of cases) {
      const err = await refusal(a.url, 'SELECT steep_repl.start_merge($1, $2, $3)', params);
      expect({ params, code: err.code, message: err.message }).toEqual({ params, code, message: expect.stringMatching(message) });
      if (hint) expect({ params, hint: err.hint }).toEqual({ params, hint: expect.stringMatching(hint) });
    }
    expect(await stateOf(a.url)).toEqual(before);
    await query(a.url, 'DROP TABLE public."no key"');

    // an init job of A: a merge is refused, the read-only analysis is not
    await query(a.url, `SELECT graphile_worker.add_job('snapshot_init', '{}', job_key => $1)`, [`init:${a.id}`]);
    const busy = await stateOf(a.url);
    const init = await refusal(a.url, 'SELECT steep_repl.start_merge($1, $2, $3)', [a.id, b.id, { strategy: 'prefer-a', tables: ['docs'] }]);
    expect({ code: init.code, message: init.message }).toEqual({ code: 'SR006', message: 'an initialization or reinit of node "merge_sql Nöde ""A"" ü" is queued or running' });
    expect(await stateOf(a.url)).toEqual(busy);
    const analysis = await start({ analyze: true, tables: ['docs'] });
    await query(a.url, 'SELECT steep_repl.cancel_merge($1)', [a.id]);
    await clearJobs(a.url);
    expect((await one(a.url, 'SELECT steep_repl.merge_status($1) AS r', [analysis.merge_id])).state).toBe('cancelled');
  });

  it('resolves table names with spaces, quotes, capitals and unicode, quoted or as written, and schemas', async () => {
    const resolve = async (scope: Record<string, unknown>) =>
      (await query(a.url, `SELECT coalesce(jsonb_agg(label ORDER BY label), '[]') AS l FROM steep_repl.merge_scope_tables($1)`, [scope]))[0].l;
    expect(await resolve({ tables: [odd] })).toEqual([odd]);
    expect(await resolve({ tables: ['Sales ünit.Order "Items" é'] })).toEqual([odd]);
    expect(await resolve({ tables: ['Order "Items" é'] })).toEqual([odd]);
    expect(await resolve({ tables: ['"Order ""Items"" é"', 'docs', 'public.docs', 'PUBLIC.DOCS'] })).toEqual([odd, 'public.docs']);
    expect(await resolve({ schema: 'Sales ünit' })).toEqual([odd]);
    expect(await resolve({ schema: '"Sales ünit"' })).toEqual([odd]);
    expect(await resolve({ schema: 'Other Schema' })).toEqual(['"Other Schema".accounts']);
    expect(await resolve({})).toEqual(['"Other Schema".accounts', odd, 'public.accounts', 'public.docs', 'public.pairs']);
  });

  it('starts a run with its tables in scope order and a job, refuses a second one, and cancels one whose job never started', async () => {
    const started = await start({ analyze: true, tables: ['public.docs', odd] });
    expect(started).toEqual({
      merge_id: expect.any(Number),
      node_a: a.id,
      node_b: b.id,
      mode: 'analyze',
      strategy: null,
      tables: [odd, 'public.docs'],
      job_id: expect.any(Number),
      follow: {
        status: `SELECT steep_repl.merge_status(${started.merge_id})`,
        channels: ['steep_repl_progress', 'steep_repl_events', 'steep_repl_state'],
        cancel: `SELECT steep_repl.cancel_merge('merge_sql Nöde "A" ü')`,
      },
    });
    expect(await jobs(a.url)).toEqual([{ task: 'merge_nodes', payload: { merge_id: started.merge_id, node_id: a.id }, key: `merge:${a.id}`, max_attempts: 5 }]);
    expect((await lastEvent(a.url, 'merge.started')).details).toMatchObject({
      merge_id: started.merge_id, node_a: a.id, node_b: b.id, mode: 'analyze', strategy: null, tables_total: 2, tables: [odd, 'public.docs'],
    });
    const status = await one(a.url, 'SELECT steep_repl.merge_status($1) AS r', [started.merge_id]);
    expect(status).toMatchObject({
      merge_id: started.merge_id, node_a: a.id, node_b: b.id, mode: 'analyze', strategy: null, state: 'queued', phase: null, step: 'queued',
      percent: 0, tables_total: 2, tables_done: 0, options: { quiesce: false, tables: ['public.docs', odd], timeout: 3600 },
      scope: { tables: ['public.docs', odd] }, job_id: started.job_id, node_a_state: 'uninitialized', node_b_state: 'uninitialized',
      job: { job_id: started.job_id, attempts: 0, max_attempts: 5, locked_at: null }, conflicts: { total: 0, unresolved: 0, by_kind: {} },
    });
    expect(status.tables).toEqual([
      expect.objectContaining({ schema_name: 'Sales ünit', table_name: 'Order "Items" é', label: odd, status: 'pending', rows_a: null, sample_keys: {}, verify: null }),
      expect.objectContaining({ schema_name: 'public', table_name: 'docs', label: 'public.docs', status: 'pending', rows_only_a: 0 }),
    ]);
    const latest = (node: string) => one(a.url, `SELECT steep_repl.latest_merge($1) - 'seconds' AS r`, [node]);
    expect(await latest(b.id)).toEqual({ ...status, seconds: undefined });
    expect(await latest(a.id)).toEqual(await latest(b.id));
    expect(await one(a.url, 'SELECT steep_repl.latest_merge($1) AS r', [third])).toBeNull();

    const before = await stateOf(a.url);
    for (const options of [{ analyze: true }, { strategy: 'prefer-a' }]) {
      const again = await refusal(a.url, 'SELECT steep_repl.start_merge($1, $2, $3)', [a.id, b.id, options]);
      expect(again.code).toBe('SR006');
      expect(again.message).toBe(`a merge of node "merge_sql Nöde ""A"" ü" is already queued or running (merge ${started.merge_id})`);
      expect(again.hint).toMatch(/cancel_merge/);
    }
    expect(await stateOf(a.url)).toEqual(before);

    const cancelled = await one(a.url, 'SELECT steep_repl.cancel_merge($1) AS r', [a.id]);
    expect(cancelled).toEqual({ merge_id: started.merge_id, node_id: a.id, cancelled: true, state: 'cancelled' });
    expect(await jobs(a.url)).toEqual([]);
    expect((await lastEvent(a.url, 'merge.cancelled')).details).toMatchObject({ merge_id: started.merge_id, exchanged: false, reason: 'cancelled before the job started' });
    expect(await one(a.url, 'SELECT steep_repl.merge_status($1) AS r', [started.merge_id])).toMatchObject({ state: 'cancelled', phase: 'done' });
    expect(await stateOfNode(a.url, a.id)).toBe('uninitialized');
    const none = await refusal(a.url, 'SELECT steep_repl.cancel_merge($1)', [a.id]);
    expect(none.code).toBe('SR003');
    expect(none.message).toBe('node "merge_sql Nöde ""A"" ü" has no merge queued or running in this database');
    expect(none.hint).toBe(`its last merge, ${started.merge_id}, is cancelled`);
    const unknown = await refusal(a.url, 'SELECT steep_repl.merge_status($1)', [999999]);
    expect(unknown.code).toBe('SR004');
    expect(unknown.message).toBe('unknown merge 999999');
    expect(unknown.hint).toMatch(new RegExp(`^the latest: ${started.merge_id} `));

    // modes: dry_run, record, merge (25 attempts); a timeout as an interval
    for (const [options, mode, attempts] of [
      [{ strategy: 'prefer-b', dry_run: true, timeout: '2 minutes', tables: ['docs'] }, 'dry_run', 5],
      [{ strategy: 'manual', tables: ['docs'] }, 'record', 5],
      [{ strategy: 'last-modified', column: 'at', schema: 'Other Schema', quiesce: true }, 'merge', 25],
    ] as const) {
      const run = await start(options);
      expect(run).toMatchObject({ mode, strategy: options.strategy });
      expect((await jobs(a.url)).map((j) => j.max_attempts)).toEqual([attempts]);
      const row = await one(a.url, 'SELECT to_jsonb(r) AS r FROM steep_repl.merge_runs r WHERE merge_id = $1', [run.merge_id]);
      if (mode === 'dry_run') expect(row.options).toEqual({ quiesce: false, timeout: 120, tables: ['docs'] });
      if (mode === 'merge') expect(row.options).toEqual({ quiesce: true, timeout: 3600, column: 'at', schema: 'Other Schema' });
      await query(a.url, 'SELECT steep_repl.cancel_merge($1)', [a.id]);
    }
  });

  it('the job: claim (resumed the second time), progress reports, tables and finish with totals and events', async () => {
    const started = await start({ strategy: 'prefer-a', dry_run: true, tables: [odd, 'public.pairs'] });
    // the job's own row: done once the run ends, as an agent's would be
    await clearJobs(a.url);
    const claimed = await one(a.url, 'SELECT steep_repl.claim_merge($1) AS r', [started.merge_id]);
    expect(claimed).toMatchObject({
      merge_id: started.merge_id, state: 'running', phase: 'preparing', resumed: false, node_a: a.id, node_b: b.id, mode: 'dry_run',
      strategy: 'prefer-a', cancel_requested_at: null,
      tables: [
        { schema_name: 'Sales ünit', table_name: 'Order "Items" é', label: odd, status: 'pending' },
        { schema_name: 'public', table_name: 'pairs', label: 'public.pairs', status: 'pending' },
      ],
    });
    const again = await one(a.url, 'SELECT steep_repl.claim_merge($1) AS r', [started.merge_id]);
    expect(again).toMatchObject({ resumed: true, started_at: claimed.started_at });

    await query(a.url, 'SELECT steep_repl.report_merge_progress($1, $2)', [started.merge_id,
      { phase: 'comparing', step: 'prepared', percent: 120, tables_done: 1, rows_only_a: 3, lsn_a: '0/16B3748', lsn_b: '1/0', error: 'a passing error' }]);
    let run = await one(a.url, 'SELECT steep_repl.merge_status($1) AS r', [started.merge_id]);
    expect(run).toMatchObject({ phase: 'comparing', step: 'prepared', percent: 100, tables_done: 1, rows_only_a: 3, lsn_a: '0/16B3748', lsn_b: '1/0', error: 'a passing error' });
    await query(a.url, 'SELECT steep_repl.report_merge_progress($1, $2)', [started.merge_id, { error: null, percent: 20 }]);
    run = await one(a.url, 'SELECT steep_repl.merge_status($1) AS r', [started.merge_id]);
    expect(run).toMatchObject({ phase: 'comparing', step: 'prepared', percent: 20, error: null, lsn_a: '0/16B3748' });
    // past the exchange, a late report of an earlier step keeps it
    await query(a.url, 'SELECT steep_repl.report_merge_progress($1, $2)', [started.merge_id, { step: 'exchanged' }]);
    await query(a.url, 'SELECT steep_repl.report_merge_progress($1, $2)', [started.merge_id, { step: 'compared', percent: 21 }]);
    expect(await one(a.url, 'SELECT steep_repl.merge_status($1) AS r', [started.merge_id])).toMatchObject({ step: 'exchanged', percent: 21 });
    await query(a.url, 'SELECT steep_repl.report_merge_progress($1, $2)', [started.merge_id, { step: 'subscribed' }]);
    expect((await one(a.url, 'SELECT steep_repl.merge_status($1) AS r', [started.merge_id])).step).toBe('subscribed');
    const badReport = await refusal(a.url, 'SELECT steep_repl.report_merge_progress($1, $2)', [started.merge_id, { speed: 1 }]);
    expect(badReport.code).toBe('SR004');
    expect(badReport.message).toBe("unknown merge progress field 'speed'");

    await query(a.url, 'SELECT steep_repl.record_merge_table($1, $2, $3, $4)', [started.merge_id, 'Sales ünit', 'Order "Items" é',
      { status: 'comparing' }]);
    await query(a.url, 'SELECT steep_repl.record_merge_table($1, $2, $3, $4)', [started.merge_id, 'Sales ünit', 'Order "Items" é', {
      status: 'compared', rows_a: 20, rows_b: 18, rows_identical: 15, rows_only_a: 3, rows_only_b: 1, rows_conflicting: 2,
      conflicts_won_a: 2, rows_to_a: 1, rows_to_b: 5, sample_keys: { only_a: [{ id: 1 }], only_b: [{ id: 30 }], conflicting: [{ id: 4 }, { id: 5 }] },
      note: 'dry run', finished_at: '2025-01-01T00:00:00Z' }]);
    await query(a.url, 'SELECT steep_repl.record_merge_table($1, $2, $3, $4)', [started.merge_id, 'public', 'pairs', {
      status: 'compared', rows_a: 4, rows_b: 4, rows_identical: 4 }]);
    const badTable = await refusal(a.url, 'SELECT steep_repl.record_merge_table($1, $2, $3, $4)', [started.merge_id, 'public', 'pairs', { colour: 1 }]);
    expect(badTable.message).toBe("unknown merge table field 'colour'");
    const table = (await one(a.url, 'SELECT steep_repl.merge_status($1) AS r', [started.merge_id])).tables[0];
    expect(table).toMatchObject({ label: odd, status: 'compared', rows_a: 20, rows_b: 18, conflicts_won_a: 2, conflicts_won_b: 0, rows_to_b: 5,
      sample_keys: { only_a: [{ id: 1 }], only_b: [{ id: 30 }], conflicting: [{ id: 4 }, { id: 5 }] }, note: 'dry run',
      started_at: expect.any(String), finished_at: '2025-01-01T00:00:00+00:00' });

    const wrong = await refusal(a.url, 'SELECT steep_repl.finish_merge($1, $2)', [started.merge_id, 'merged']);
    expect(wrong.code).toBe('SR004');
    expect(wrong.message).toBe('a dry_run run does not end merged');
    const unknownOutcome = await refusal(a.url, 'SELECT steep_repl.finish_merge($1, $2)', [started.merge_id, 'maybe']);
    expect(unknownOutcome.code).toBe('SR004');
    const finished = await one(a.url, 'SELECT steep_repl.finish_merge($1, $2) AS r', [started.merge_id, 'analyzed']);
    expect(finished).toMatchObject({ state: 'analyzed', phase: 'done', percent: 100, tables_done: 2, rows_identical: 19, rows_only_a: 3,
      rows_only_b: 1, rows_conflicting: 2, rows_to_a: 1, rows_to_b: 5, finished_at: expect.any(String), error: null });
    expect((await lastEvent(a.url, 'merge.completed')).details).toMatchObject({
      merge_id: started.merge_id, outcome: 'analyzed', mode: 'dry_run', strategy: 'prefer-a', seconds: expect.any(Number),
      totals: { tables_total: 2, rows_identical: 19, rows_only_a: 3, rows_only_b: 1, rows_conflicting: 2, rows_to_a: 1, rows_to_b: 5 },
    });
    // after the end: reports change nothing, records and a second finish are refused
    const ended = await stateOf(a.url);
    await query(a.url, 'SELECT steep_repl.report_merge_progress($1, $2)', [started.merge_id, { percent: 5 }]);
    expect(await stateOf(a.url)).toEqual(ended);
    expect((await refusal(a.url, 'SELECT steep_repl.finish_merge($1, $2)', [started.merge_id, 'analyzed'])).message).toBe(`merge ${started.merge_id} has ended already (analyzed)`);
    expect((await refusal(a.url, 'SELECT steep_repl.record_merge_table($1, $2, $3, $4)', [started.merge_id, 'public', 'pairs', {}])).code).toBe('SR003');
    expect(await one(a.url, 'SELECT steep_repl.claim_merge($1) AS r', [started.merge_id])).toBeNull();

    // failed keeps error, hint and kind
    const failing = await start({ analyze: true, tables: ['docs'] });
    await clearJobs(a.url);
    await one(a.url, 'SELECT steep_repl.claim_merge($1) AS r', [failing.merge_id]);
    const badKind = await refusal(a.url, 'SELECT steep_repl.finish_merge($1, $2, $3)', [failing.merge_id, 'failed', { error: 'x', kind: 'gremlins' }]);
    expect(badKind.message).toBe("unknown merge failure kind 'gremlins'");
    const failed = await one(a.url, 'SELECT steep_repl.finish_merge($1, $2, $3) AS r', [failing.merge_id, 'failed', { error: 'table public.docs differs on B', hint: 'steep-repl schema compare', kind: 'schema' }]);
    expect(failed).toMatchObject({ state: 'failed', error: 'table public.docs differs on B', hint: 'steep-repl schema compare', failure_kind: 'schema' });
    expect((await lastEvent(a.url, 'merge.failed')).details).toMatchObject({ merge_id: failing.merge_id, error: 'table public.docs differs on B', kind: 'schema' });

    // a run whose job vanished does not block the next one
    const orphan = await start({ analyze: true, tables: ['docs'] });
    await clearJobs(a.url);
    const next = await start({ analyze: true, tables: ['docs'] });
    expect(await one(a.url, 'SELECT steep_repl.merge_status($1) AS r', [orphan.merge_id])).toMatchObject({ state: 'failed', error: 'its job ended without recording a result' });
    await query(a.url, 'SELECT steep_repl.cancel_merge($1)', [a.id]);
    expect((await one(a.url, 'SELECT steep_repl.merge_status($1) AS r', [next.merge_id])).state).toBe('cancelled');
  });

  it('conflicts: recorded, resolved by function or UPDATE, every bad resolution refused changing nothing; --apply counts the unresolved', async () => {
    const record = await start({ strategy: 'manual', tables: [odd, 'pairs'] });
    await clearJobs(a.url);
    await one(a.url, 'SELECT steep_repl.claim_merge($1) AS r', [record.merge_id]);
    const row = (id: number, v: string) => ({ id, v, 'Updated At': null, doubled: id * 2 });
    const conflicts = [1, 2, 3].map((id) => ({ key: { id }, row_a: row(id, `a ${id}`), row_b: row(id, `b ${id}`), hash_a: `ha${id}`, hash_b: `hb${id}` }));
    expect(await one(a.url, 'SELECT steep_repl.record_merge_conflicts($1, $2, $3, $4) AS r', [record.merge_id, 'Sales ünit', 'Order "Items" é', JSON.stringify(conflicts)])).toBe(3);
    // a key again: its rows replaced, the last one of a batch counts
    expect(await one(a.url, 'SELECT steep_repl.record_merge_conflicts($1, $2, $3, $4) AS r', [record.merge_id, 'Sales ünit', 'Order "Items" é',
      JSON.stringify([{ ...conflicts[2], row_b: row(3, 'first') }, { ...conflicts[2], row_b: row(3, 'b 3 again') }])])).toBe(1);
    expect(await one(a.url, 'SELECT steep_repl.record_merge_conflicts($1, $2, $3, $4) AS r', [record.merge_id, 'public', 'pairs',
      JSON.stringify([{ key: { K: 'ä', n: 1 }, row_a: { K: 'ä', n: 1, v: 'x' }, row_b: { K: 'ä', n: 1, v: 'y' }, hash_a: 'h1', hash_b: 'h2' },
                      { key: { K: 'ä', n: 2 }, kind: 'unique', row_a: { K: 'ä', n: 2, v: 'x' }, row_b: null, hash_a: 'h3', hash_b: null }])])).toBe(2);
    for (const [rows, message] of [
      ['{}', /conflicts are a JSON array/],
      [JSON.stringify([{ key: 1 }]), /conflicts are a JSON array/],
      [JSON.stringify([{ key: { id: 1 }, kind: 'odd' }]), /conflicts are a JSON array/],
    ] as const) {
      expect((await refusal(a.url, 'SELECT steep_repl.record_merge_conflicts($1, $2, $3, $4)', [record.merge_id, 'public', 'pairs', rows])).message).toMatch(message);
    }
    expect((await refusal(a.url, 'SELECT steep_repl.record_merge_conflicts($1, $2, $3, $4)', [record.merge_id, 'public', 'docs', '[]'])).message)
      .toBe(`table public.docs is not part of merge ${record.merge_id}`);

    // resolving waits for the record's end
    expect((await refusal(a.url, 'SELECT steep_repl.resolve_merge_conflicts($1, $2)', [record.merge_id, 'a'])).code).toBe('SR003');
    await query(a.url, 'SELECT steep_repl.finish_merge($1, $2)', [record.merge_id, 'resolving']);
    expect((await one(a.url, 'SELECT steep_repl.merge_status($1) AS r', [record.merge_id])).conflicts).toEqual({ total: 5, unresolved: 5, by_kind: { conflict: 4, unique: 1 } });

    const apply = { strategy: 'manual', apply: true };
    let before = await stateOf(a.url);
    const unresolved = await refusal(a.url, 'SELECT steep_repl.start_merge($1, $2, $3)', [a.id, b.id, apply]);
    expect(unresolved.code).toBe('SR004');
    expect(unresolved.message).toBe(`5 conflicts of merge ${record.merge_id} are unresolved`);
    expect(unresolved.hint).toMatch(new RegExp(`UPDATE steep_repl.merge_conflicts SET resolution = 'a'.*WHERE merge_id = ${record.merge_id} AND resolution IS NULL`));
    expect(await stateOf(a.url)).toEqual(before);

    // the table's, one key's by UPDATE, a row
    expect(await one(a.url, 'SELECT steep_repl.resolve_merge_conflicts($1, $2, $3) AS r', [record.merge_id, 'b', 'pairs'])).toBe(2);
    expect(await one(a.url, 'SELECT steep_repl.resolve_merge_conflicts($1, $2, $3, $4) AS r', [record.merge_id, 'a', 'Order "Items" é', { id: 1 }])).toBe(1);
    await query(a.url, `UPDATE steep_repl.merge_conflicts SET resolution = 'b' WHERE merge_id = $1 AND key = '{"id": 2}'`, [record.merge_id]);
    expect(await one(a.url, 'SELECT steep_repl.resolve_merge_conflicts($1, $2, $3, $4, $5) AS r', [record.merge_id, 'row', odd, { id: 3 }, row(3, 'both ✓')])).toBe(1);
    const resolved = await query(a.url, `SELECT key, resolution, resolved_row, resolved_at IS NOT NULL AS at FROM steep_repl.merge_conflicts WHERE merge_id = $1 ORDER BY table_name, key`, [record.merge_id]);
    expect(resolved).toEqual([
      { key: { id: 1 }, resolution: 'a', resolved_row: null, at: true },
      { key: { id: 2 }, resolution: 'b', resolved_row: null, at: true },
      { key: { id: 3 }, resolution: 'row', resolved_row: row(3, 'both ✓'), at: true },
      { key: { K: 'ä', n: 1 }, resolution: 'b', resolved_row: null, at: true },
      { key: { K: 'ä', n: 2 }, resolution: 'b', resolved_row: null, at: true },
    ]);

    // every bad resolution, by function or by UPDATE, is refused and changes nothing
    before = await stateOf(a.url);
    const set = (assignment: string, key: string) =>
      refusal(a.url, `UPDATE steep_repl.merge_conflicts SET ${assignment} WHERE merge_id = $1 AND key = $2`, [record.merge_id, key]);
    const updates: Array<[string, string, RegExp]> = [
      ["resolution = 'c'", '{"id": 1}', /a resolution is a \(node A's row wins\), b \(node B's row wins\) or row/],
      ["resolution = 'row', resolved_row = NULL", '{"id": 1}', /resolution row needs resolved_row/],
      [`resolved_row = '{"id": 1, "v": "x", "Updated At": null}'`, '{"id": 1}', /resolution 'a' takes no resolved_row/],
      [`resolution = 'row', resolved_row = '[1]'`, '{"id": 1}', /resolution row needs resolved_row, the row both nodes get as a JSON object/],
      [`resolution = 'row', resolved_row = '{"id": 1, "v": "x", "Updated At": null, "colour": 1}'`, '{"id": 1}', /names column\(s\) table "Sales ünit"\."Order ""Items"" é" does not have: colour/],
      [`resolution = 'row', resolved_row = '{"id": 1, "v": "x"}'`, '{"id": 1}', /lacks column\(s\) of table "Sales ünit"\."Order ""Items"" é": "Updated At"/],
      [`resolution = 'row', resolved_row = '{"id": 1, "v": "x", "Updated At": "not a time"}'`, '{"id": 1}', /does not fit table "Sales ünit"\."Order ""Items"" é": invalid input syntax for type timestamp with time zone/],
      [`resolution = 'row', resolved_row = '{"id": 9, "v": "x", "Updated At": null}'`, '{"id": 1}', /has another value in key column\(s\) id: a resolution keeps the row's key/],
      [`resolution = NULL, resolved_row = '{"id": 3, "v": "x", "Updated At": null}'`, '{"id": 3}', /resolved_row goes with resolution 'row'/],
      [`resolution = 'row', resolved_row = '{"K": "ä", "n": 2.5, "v": "x"}'`, '{"K": "ä", "n": 1}', /does not fit table public\.pairs: invalid input syntax for type integer/],
    ];
    for (const [assignment, key, message] of updates) {
      const err = await set(assignment, key);
      expect({ assignment, code: err.code, message: err.message }).toEqual({ assignment, code: 'SR004', message: expect.stringMatching(message) });
    }
    const calls: Array<[unknown[], string, RegExp]> = [
      [[record.merge_id, 'c'], 'SR004', /a resolution is a/],
      [[record.merge_id, 'row', odd], 'SR004', /resolution row gives one conflict its row: name the key/],
      [[record.merge_id, 'a', null, null, { id: 1 }], 'SR004', /resolution 'a' takes no row/],
      [[record.merge_id, 'a', null, { id: 99 }], 'SR004', new RegExp(`merge ${record.merge_id} recorded no conflict of key \\{"id": 99\\}`)],
      [[record.merge_id, 'a', 'docs'], 'SR004', new RegExp(`table 'docs' is not among the tables of merge ${record.merge_id}`)],
      [[record.merge_id, 'a', null, '[1]'], 'SR004', /a key is a JSON object/],
      [[record.merge_id, 'row', odd, { id: 1 }, { id: 1, v: 'x' }], 'SR004', /lacks column\(s\)/],
      [[999999, 'a'], 'SR004', /unknown merge 999999/],
    ];
    for (const [params, code, message] of calls) {
      const err = await refusal(a.url, 'SELECT steep_repl.resolve_merge_conflicts($1, $2, $3, $4, $5)', [...params, null, null, null, null].slice(0, 5));
      expect({ params, code: err.code, message: err.message }).toEqual({ params, code, message: expect.stringMatching(message) });
    }
    expect(await stateOf(a.url)).toEqual(before);

    // apply: allowed once all are resolved; it names the record and inherits its scope
    const applied = await start(apply);
    expect(applied).toMatchObject({ mode: 'merge', strategy: 'manual', tables: [odd, 'public.pairs'] });
    expect((await one(a.url, 'SELECT steep_repl.merge_status($1) AS r', [applied.merge_id])).options).toMatchObject({ resolutions_of: record.merge_id });
    await query(a.url, 'SELECT steep_repl.cancel_merge($1)', [a.id]);
    // only a record run's conflicts are resolved
    expect((await refusal(a.url, 'SELECT steep_repl.resolve_merge_conflicts($1, $2)', [applied.merge_id, 'a'])).message).toMatch(/is a merge run/);
  });

  it('merge_node_begin refuses bad calls, wrong places and busy nodes, changing nothing', async () => {
    const merge = { merge_id: 4242, coordinator: a.id, role: 'a', strategy: 'prefer-a', tables_total: 2 };
    const before = await stateOf(a.url);
    const cases: Array<[unknown[], string, RegExp]> = [
      [[b.id, a.id, { ...merge, role: 'b' }], 'SR004', /merge_node_begin runs on the database of node "merge_sql node B ✓"/],
      [[a.id, a.id, merge], 'SR004', /cannot be merged with itself/],
      [[a.id, 'nobody', merge], 'SR001', /unknown node 'nobody'/],
      [[a.id, b.id, { ...merge, role: 'c' }], 'SR004', /a merge is \{merge_id, coordinator, role: a\|b/],
      [[a.id, b.id, { ...merge, merge_id: '1' }], 'SR004', /a merge is \{merge_id/],
      [[a.id, b.id, { ...merge, coordinator: b.id }], 'SR004', /the coordinator of a merge is node A/],
      [[a.id, b.id, { ...merge, role: 'b' }], 'SR004', /the coordinator of a merge is node A/],
    ];
    for (const [params, code, message] of cases) {
      const err = await refusal(a.url, 'SELECT steep_repl.merge_node_begin($1, $2, $3)', params);
      expect({ params, code: err.code, message: err.message }).toEqual({ params, code, message: expect.stringMatching(message) });
    }
    expect(await stateOf(a.url)).toEqual(before);

    // an init job, a merge job of another run, a node that is not uninitialized or failed
    await query(a.url, `SELECT graphile_worker.add_job('snapshot_init', '{}', job_key => $1)`, [`init:${a.id}`]);
    let busy = await stateOf(a.url);
    expect((await refusal(a.url, 'SELECT steep_repl.merge_node_begin($1, $2, $3)', [a.id, b.id, merge])).code).toBe('SR006');
    expect(await stateOf(a.url)).toEqual(busy);
    await clearJobs(a.url);
    await query(a.url, `SELECT graphile_worker.add_job('merge_nodes', '{"merge_id": 1}', job_key => $1)`, [`merge:${a.id}`]);
    busy = await stateOf(a.url);
    const own = await refusal(a.url, 'SELECT steep_repl.merge_node_begin($1, $2, $3)', [a.id, b.id, merge]);
    expect({ code: own.code, message: own.message }).toEqual({ code: 'SR006', message: 'node "merge_sql Nöde ""A"" ü" is in merge 1 of its own, queued or running' });
    expect(await stateOf(a.url)).toEqual(busy);
    await clearJobs(a.url);
    // B coordinating a merge of its own refuses to be another's B
    await query(b.url, `SELECT graphile_worker.add_job('merge_nodes', '{"merge_id": 4242}', job_key => $1)`, [`merge:${b.id}`]);
    busy = await stateOf(b.url);
    expect((await refusal(b.url, 'SELECT steep_repl.merge_node_begin($1, $2, $3)', [b.id, a.id, { ...merge, role: 'b' }])).code).toBe('SR006');
    expect(await stateOf(b.url)).toEqual(busy);
    await clearJobs(b.url);
  });

  it('each node: begin → step → finish, a resumed begin and a repeated finish changing nothing; cancelled, unchanged and failed', async () => {
    const mergeId = 777;
    const merge = (role: 'a' | 'b') => ({ merge_id: mergeId, coordinator: a.id, role, strategy: 'prefer-b', tables_total: 2 });
    const begin = (db: NodeDb, peer: NodeDb, role: 'a' | 'b', id = mergeId) =>
      one(db.url, 'SELECT steep_repl.merge_node_begin($1, $2, $3) AS r', [db.id, peer.id, { ...merge(role), merge_id: id }]);
    const step = (db: NodeDb, s: string, state: string | null = null, progress: unknown = {}, id = mergeId) =>
      one(db.url, 'SELECT steep_repl.merge_node_step($1, $2, $3, $4, $5) AS r', [db.id, id, s, state, progress]);
    const finish = (db: NodeDb, outcome: string, details: unknown = {}, id = mergeId) =>
      query(db.url, 'SELECT * FROM steep_repl.merge_node_finish($1, $2, $3, $4)', [db.id, id, outcome, details]).then((r) => r[0]);
    const progress = async (db: NodeDb) => (await query(db.url, 'SELECT to_jsonb(p) AS r FROM steep_repl.init_progress p WHERE node_id = $1', [db.id]))[0]?.r;

    // the merge job is the coordinator's own: it does not block A's begin
    await query(a.url, `SELECT graphile_worker.add_job('merge_nodes', $1, job_key => $2)`, [{ merge_id: mergeId, node_id: a.id }, `merge:${a.id}`]);
    const began = await begin(a, b, 'a');
    expect(began).toEqual({ merge_id: mergeId, coordinator: a.id, peer_node_id: b.id, role: 'a', strategy: 'prefer-b', tables_total: 2,
      step: 'queued', error: null, resumed: false, node_state: 'preparing' });
    expect(await progress(a)).toMatchObject({ method: 'merge', source_node_id: b.id, phase: 'preparing', tables_total: 2, merge: { merge_id: mergeId, role: 'a', step: 'queued' } });
    expect(await query(a.url, 'SELECT init_state, init_source_node FROM steep_repl.nodes WHERE node_id = $1', [a.id])).toEqual([{ init_state: 'preparing', init_source_node: b.id }]);
    expect(await lastEvent(a.url, 'init.state_change')).toMatchObject({ from_state: 'uninitialized', to_state: 'preparing', details: { reason: `merge with ${b.id}` } });
    expect((await lastEvent(a.url, 'merge.node_started')).details).toMatchObject({ merge_id: mergeId, peer_node: b.id, role: 'a', previous_state: 'uninitialized' });
    // resumed: the same merge back, nothing changed
    const steady = await stateOf(a.url);
    expect(await begin(a, b, 'a')).toEqual({ ...began, resumed: true });
    expect(await stateOf(a.url)).toEqual(steady);
    // another merge while this one is in progress
    const other = await refusal(a.url, 'SELECT steep_repl.merge_node_begin($1, $2, $3)', [a.id, b.id, { ...merge('a'), merge_id: mergeId + 1 }]);
    expect(other.code).toBe('SR006');
    await clearJobs(a.url);
    const inProgress = await refusal(a.url, 'SELECT steep_repl.merge_node_begin($1, $2, $3)', [a.id, b.id, { ...merge('a'), merge_id: mergeId + 1 }]);
    expect({ code: inProgress.code, message: inProgress.message }).toEqual({ code: 'SR003', message: 'node "merge_sql Nöde ""A"" ü" is preparing: only an uninitialized node, or one whose merge or initialization failed, is merged' });
    // a real merge of A is refused while A is in one; the read-only analysis is not
    const busyA = await refusal(a.url, 'SELECT steep_repl.start_merge($1, $2, $3)', [a.id, b.id, { strategy: 'prefer-a', tables: ['docs'] }]);
    expect({ code: busyA.code, message: busyA.message }).toEqual({ code: 'SR003', message: 'node "merge_sql Nöde ""A"" ü" is preparing: only an uninitialized node, or one whose merge failed, is merged' });
    const analysis = await start({ analyze: true, tables: ['docs'] });
    await query(a.url, 'SELECT steep_repl.cancel_merge($1)', [a.id]);
    expect((await one(a.url, 'SELECT steep_repl.merge_status($1) AS r', [analysis.merge_id])).state).toBe('cancelled');

    // steps: no state; copying; refusals; catching_up; never back
    expect(await step(a, 'prepared', null, { overall_percent: 4, tables_done: 0 })).toMatchObject({ step: 'prepared', node_state: 'preparing', cancel_requested_at: null });
    expect(await step(a, 'comparing', 'copying', { overall_percent: 10, current_table: odd, rows_copied: 5, rows_total: 20, error: 'B is slow' }))
      .toMatchObject({ step: 'comparing', node_state: 'copying', error: 'B is slow' });
    expect(await progress(a)).toMatchObject({ phase: 'copying', overall_percent: 10, current_table: odd, rows_copied: 5, rows_total: 20, error: 'B is slow' });
    expect(await lastEvent(a.url, 'init.state_change')).toMatchObject({ from_state: 'preparing', to_state: 'copying' });
    const steps: Array<[unknown[], string, RegExp]> = [
      [[a.id, mergeId + 5, 'compared', null, {}], 'SR004', new RegExp(`is not in merge ${mergeId + 5} \\(it is in merge ${mergeId}\\)`)],
      [[a.id, mergeId, 'compared', 'synchronized', {}], 'SR004', /moves a node to copying or catching_up, not 'synchronized'/],
      [[a.id, mergeId, 'compared', null, { speed: 2 }], 'SR004', /unknown merge progress field 'speed'/],
      [[a.id, mergeId, 'compared', null, { phase: 'done' }], 'SR004', /phase on a node is preparing, copying, catching_up or verifying/],
      [[a.id, mergeId, '', null, {}], 'SR004', /a merge step is a name/],
      [[b.id, mergeId, 'compared', null, {}], 'SR004', /merge_node_step runs on the database of node "merge_sql node B ✓"/],
    ];
    const beforeSteps = await stateOf(a.url);
    for (const [params, code, message] of steps) {
      const err = await refusal(a.url, 'SELECT steep_repl.merge_node_step($1, $2, $3, $4, $5)', params);
      expect({ params, code: err.code, message: err.message }).toEqual({ params, code, message: expect.stringMatching(message) });
    }
    expect(await stateOf(a.url)).toEqual(beforeSteps);
    expect(await step(a, 'exchanged', 'catching_up', { error: null, overall_percent: 75 })).toMatchObject({ step: 'exchanged', node_state: 'catching_up', error: null });
    expect(await progress(a)).toMatchObject({ phase: 'catching_up', error: null });
    // a late report of an earlier step keeps the exchange's mark; no way back to copying
    expect(await step(a, 'comparing', 'copying')).toMatchObject({ step: 'exchanged', node_state: 'catching_up' });
    await step(a, 'subscribed', 'catching_up', { phase: 'verifying', overall_percent: 90 });
    expect((await progress(a)).phase).toBe('verifying');

    // B, on its own database
    expect(await begin(b, a, 'b')).toMatchObject({ role: 'b', coordinator: a.id, peer_node_id: a.id, node_state: 'preparing' });
    await step(b, 'exchanged', 'catching_up');
    expect(await stateOfNode(b.url, b.id)).toBe('catching_up');

    // finish: synchronized on A, diverged on B with its divergence; again changes nothing
    const divergence = [{ schema_name: 'Sales ünit', table_name: 'Order "Items" é', rows_missing: 1, rows_extra: 0, rows_different: 2 }];
    expect(await finish(a, 'synchronized')).toMatchObject({ node_id: a.id, init_state: 'synchronized', init_source_node: b.id });
    expect(await progress(a)).toMatchObject({ phase: 'done', overall_percent: 100, tables_done: 2, merge: { outcome: 'synchronized', finished_at: expect.any(String), step: 'subscribed' } });
    expect((await lastEvent(a.url, 'merge.node_finished')).details).toMatchObject({ merge_id: mergeId, outcome: 'synchronized', peer_node: b.id });
    const doneA = await stateOf(a.url);
    expect(await finish(a, 'synchronized')).toMatchObject({ init_state: 'synchronized' });
    expect(await stateOf(a.url)).toEqual(doneA);
    expect((await refusal(a.url, 'SELECT steep_repl.merge_node_step($1, $2, $3)', [a.id, mergeId, 'verified'])).code).toBe('SR003');
    expect((await refusal(a.url, 'SELECT steep_repl.merge_node_finish($1, $2, $3)', [a.id, mergeId, 'failed'])).code).toBe('SR003');

    expect((await refusal(b.url, 'SELECT steep_repl.merge_node_finish($1, $2, $3)', [b.id, mergeId, 'diverged'])).message).toMatch(/names what differs/);
    expect((await refusal(b.url, 'SELECT steep_repl.merge_node_finish($1, $2, $3)', [b.id, mergeId, 'merged'])).message).toMatch(/unknown merge outcome on a node 'merged'/);
    expect(await finish(b, 'diverged', { divergence })).toMatchObject({ init_state: 'diverged' });
    expect(await query(b.url, 'SELECT node_id, schema_name, table_name, peer_node_id, verify_id, rows_missing::int, rows_extra::int, rows_different::int FROM steep_repl.node_divergence')).toEqual([
      { node_id: b.id, schema_name: 'Sales ünit', table_name: 'Order "Items" é', peer_node_id: a.id, verify_id: null, rows_missing: 1, rows_extra: 0, rows_different: 2 },
    ]);
    expect((await lastEvent(b.url, 'merge.node_finished')).details).toMatchObject({ outcome: 'diverged', peer_node: a.id, tables_differing: [odd] });
    expect(await eventCount(b.url, 'merge.node_finished')).toBe(1);

    // back to uninitialized for the rest (as a detach would), then: failed, a new merge from failed, cancelled, unchanged
    for (const db of [a, b]) {
      await query(db.url, `UPDATE steep_repl.nodes SET init_state = 'uninitialized', init_source_node = NULL WHERE node_id = $1`, [db.id]);
      await query(db.url, 'DELETE FROM steep_repl.init_progress; DELETE FROM steep_repl.node_divergence');
    }
    await begin(b, a, 'b', 801);
    await step(b, 'comparing', 'copying', {}, 801);
    await finish(b, 'failed', { error: 'the exchange failed', hint: 'run the merge again', kind: 'connection' }, 801);
    expect(await progress(b)).toMatchObject({ phase: 'failed', error: 'the exchange failed; run the merge again', failure_kind: 'connection',
      merge: { merge_id: 801, outcome: 'failed', error: 'the exchange failed', hint: 'run the merge again' } });
    expect(await stateOfNode(b.url, b.id)).toBe('failed');
    // B's cancel: nothing runs any more
    const failedCancel = await refusal(b.url, 'SELECT steep_repl.cancel_merge($1)', [b.id]);
    expect(failedCancel.code).toBe('SR003');
    expect(failedCancel.hint).toMatch(/failed: run it again \(steep-repl node merge\), or detach the node/);
    // a failed node enters a new merge
    expect(await begin(b, a, 'b', 802)).toMatchObject({ merge_id: 802, node_state: 'preparing', step: 'queued' });
    expect(await lastEvent(b.url, 'merge.node_started')).toMatchObject({ details: { previous_state: 'failed' } });
    await step(b, 'comparing', 'copying', {}, 802);
    expect(await finish(b, 'cancelled', {}, 802)).toMatchObject({ init_state: 'uninitialized', init_source_node: null });
    expect(await progress(b)).toBeUndefined();
    expect(await query(b.url, 'SELECT count(*)::int AS n FROM steep_repl.init_table_progress')).toEqual([{ n: 0 }]);
    // cancelled again, or unchanged for a node in no merge: nothing happens
    const quiet = await stateOf(b.url);
    await finish(b, 'cancelled', {}, 802);
    await finish(b, 'unchanged', {}, 803);
    expect(await stateOf(b.url)).toEqual(quiet);
    await begin(b, a, 'b', 804);
    expect(await finish(b, 'unchanged', {}, 804)).toMatchObject({ init_state: 'uninitialized', init_source_node: null });
    expect((await lastEvent(b.url, 'merge.node_finished')).details).toMatchObject({ merge_id: 804, outcome: 'unchanged', reason: 'the merge ended before it changed anything on this node' });
    // a failed merge's row left by a failed node, then cancelled by the job's cleanup
    await begin(a, b, 'a', 805);
    await finish(a, 'failed', { error: 'refused by B' }, 805);
    expect(await finish(a, 'cancelled', {}, 805)).toMatchObject({ init_state: 'uninitialized' });
  });

  it('cancel_merge: a running run on A (told, or a job queued to clean up), on B (the job polls its row); cancel_init routes there', async () => {
    const started = await start({ strategy: 'prefer-a', tables: [odd] });
    await one(a.url, 'SELECT steep_repl.claim_merge($1) AS r', [started.merge_id]);
    await query(a.url, 'SELECT steep_repl.merge_node_begin($1, $2, $3)', [a.id, b.id, { merge_id: started.merge_id, coordinator: a.id, role: 'a', strategy: 'prefer-a', tables_total: 1 }]);
    await query(b.url, 'SELECT steep_repl.merge_node_begin($1, $2, $3)', [b.id, a.id, { merge_id: started.merge_id, coordinator: a.id, role: 'b', strategy: 'prefer-a', tables_total: 1 }]);
    // the agent holds the job
    await query(a.url, `UPDATE graphile_worker._private_jobs SET locked_at = now(), locked_by = 'merge_sql test'`);
    const listener = await ChannelRecorder.listen(a.url, ['steep_repl_cancel']);
    try {
      const asked = await one(a.url, 'SELECT steep_repl.cancel_init($1) AS r', [a.id]);
      expect(asked).toEqual({ merge_id: started.merge_id, node_id: a.id, cancelled: false, cancel_requested: true, job_id: started.job_id, state: 'running' });
      await withClient(a.url, (c: Client) => listener.fence(c));
      expect(listener.take()).toEqual([{ channel: 'steep_repl_cancel', payload: { node_id: a.id, job_id: started.job_id } }]);
    } finally {
      await listener.close();
    }
    const run = await one(a.url, 'SELECT steep_repl.merge_status($1) AS r', [started.merge_id]);
    expect(run).toMatchObject({ state: 'running', cancel_requested_at: expect.any(String) });
    expect(await query(a.url, 'SELECT phase, cancel_requested_at IS NOT NULL AS asked FROM steep_repl.init_progress')).toEqual([{ phase: 'cancelling', asked: true }]);
    // a step keeps the phase cancelling and tells the job
    expect(await one(a.url, 'SELECT steep_repl.merge_node_step($1, $2, $3, $4, $5) AS r', [a.id, started.merge_id, 'prepared', null, { phase: 'copying' }]))
      .toMatchObject({ cancel_requested_at: expect.any(String) });
    expect(await query(a.url, 'SELECT phase FROM steep_repl.init_progress')).toEqual([{ phase: 'cancelling' }]);
    expect((await lastEvent(a.url, 'merge.cancel_requested')).details).toMatchObject({ merge_id: started.merge_id, job_id: started.job_id });

    // the job is gone (out of attempts): a new one is queued to clean up
    await clearJobs(a.url);
    const requeued = await one(a.url, 'SELECT steep_repl.cancel_merge($1) AS r', [b.id]);
    expect(requeued).toMatchObject({ merge_id: started.merge_id, cancel_requested: true, cancelled: false, job_id: expect.any(Number) });
    expect(await jobs(a.url)).toEqual([{ task: 'merge_nodes', payload: { merge_id: started.merge_id, node_id: a.id }, key: `merge:${a.id}`, max_attempts: 25 }]);
    expect((await one(a.url, 'SELECT steep_repl.merge_status($1) AS r', [started.merge_id])).job_id).toBe(requeued.job_id);

    // on B's database: its row, which the job polls
    const onB = await one(b.url, 'SELECT steep_repl.cancel_init($1) AS r', [b.id]);
    expect(onB).toEqual({ merge_id: started.merge_id, node_id: b.id, cancelled: false, cancel_requested: true, coordinator: a.id, state: 'preparing' });
    expect(await query(b.url, 'SELECT phase, cancel_requested_at IS NOT NULL AS asked FROM steep_repl.init_progress')).toEqual([{ phase: 'cancelling', asked: true }]);
    const nothingOnB = await refusal(b.url, 'SELECT steep_repl.cancel_merge($1)', [a.id]);
    expect(nothingOnB.code).toBe('SR003');

    // the job's cleanup
    for (const db of [a, b]) await query(db.url, 'SELECT steep_repl.merge_node_finish($1, $2, $3)', [db.id, started.merge_id, 'cancelled']);
    const end = await one(a.url, 'SELECT steep_repl.finish_merge($1, $2, $3) AS r', [started.merge_id, 'cancelled', { exchanged: true }]);
    expect(end).toMatchObject({ state: 'cancelled', node_a_state: 'uninitialized' });
    expect((await lastEvent(a.url, 'merge.cancelled')).details).toMatchObject({ merge_id: started.merge_id, exchanged: true });
    await clearJobs(a.url);

    // a run failed by start_merge (its job gone) while A was still in it: reopened for a cleanup job
    const stale = await start({ strategy: 'prefer-a', tables: [odd] });
    await one(a.url, 'SELECT steep_repl.claim_merge($1) AS r', [stale.merge_id]);
    await query(a.url, 'SELECT steep_repl.merge_node_begin($1, $2, $3)', [a.id, b.id, { merge_id: stale.merge_id, coordinator: a.id, role: 'a', strategy: 'prefer-a', tables_total: 1 }]);
    await clearJobs(a.url);
    await start({ analyze: true, tables: ['docs'] });
    await query(a.url, 'SELECT steep_repl.cancel_merge($1)', [a.id]);
    expect((await one(a.url, 'SELECT steep_repl.merge_status($1) AS r', [stale.merge_id])).state).toBe('failed');
    const reopened = await one(a.url, 'SELECT steep_repl.cancel_merge($1) AS r', [a.id]);
    expect(reopened).toMatchObject({ merge_id: stale.merge_id, cancel_requested: true, state: 'running' });
    expect((await jobs(a.url)).map((j) => j.payload)).toEqual([{ merge_id: stale.merge_id, node_id: a.id }]);
    await query(a.url, 'SELECT steep_repl.merge_node_finish($1, $2, $3)', [a.id, stale.merge_id, 'cancelled']);
    await query(a.url, 'SELECT steep_repl.finish_merge($1, $2, $3)', [stale.merge_id, 'cancelled', { exchanged: false }]);
    await clearJobs(a.url);
  });

  it('init_method refuses merge, naming node merge', async () => {
    const err = await refusal(a.url, "SELECT steep_repl.init_method('merge')");
    expect({ code: err.code, message: err.message }).toEqual({ code: 'SR004', message: 'merge is started with steep-repl node merge (steep_repl.start_merge)' });
    const init = await refusal(a.url, "SELECT steep_repl.start_init($1, $2, 'merge')", [a.id, b.id]);
    expect(init.message).toBe('merge is started with steep-repl node merge (steep_repl.start_merge)');
  });

  it('announces a run on steep_repl_progress with its shape, under 8000 bytes whatever its error', async () => {
    const listener = await ChannelRecorder.listen(a.url, ['steep_repl_progress']);
    try {
      const started = await start({ analyze: true, tables: [odd] });
      await clearJobs(a.url);
      await one(a.url, 'SELECT steep_repl.claim_merge($1) AS r', [started.merge_id]);
      // 4-byte letters and control characters (6 bytes escaped) of every length
      const huge = ('😀\u0001'.repeat(3000) + 'x').repeat(2);
      await query(a.url, 'SELECT steep_repl.report_merge_progress($1, $2)', [started.merge_id, { phase: 'comparing', percent: 12.5, error: huge }]);
      await withClient(a.url, (c: Client) => listener.fence(c));
      const raw = listener.received.filter((r) => JSON.parse(r.payload).merge_id === started.merge_id);
      expect(raw.length).toBe(3);
      for (const r of raw) expect(Buffer.byteLength(r.payload)).toBeLessThan(8000);
      const payloads = listener.take().map((r) => r.payload).filter((p) => p.merge_id === started.merge_id);
      expect(payloads[0]).toEqual({
        kind: 'merge', merge_id: started.merge_id, node_a: a.id, node_b: b.id, mode: 'analyze', strategy: null, state: 'queued', phase: null,
        step: 'queued', percent: 0, tables_done: 0, tables_total: 1, rows_only_a: 0, rows_only_b: 0, rows_conflicting: 0, rows_to_a: 0, rows_to_b: 0, error: null,
      });
      expect(payloads[2]).toMatchObject({ state: 'running', phase: 'comparing', percent: 12.5 });
      expect([...payloads[2].error]).toEqual([...huge].slice(0, 1000));
      // the row keeps the whole error
      expect((await one(a.url, 'SELECT steep_repl.merge_status($1) AS r', [started.merge_id])).error).toBe(huge);
      await query(a.url, 'SELECT steep_repl.finish_merge($1, $2)', [started.merge_id, 'analyzed']);
    } finally {
      await listener.close();
    }
  });
});
