// node merge on real servers, from SQL (steep_repl.start_merge on node A's
// database, A's agent running the job): two nodes that both hold data —
// shared rows, rows only on each, 1000 conflicts in the items table and a
// few in the others (a parent and child with a foreign key, a composite
// text key). The analysis counts exactly what the rows' formulas say and
// changes nothing; a dry run adds what each strategy would write; prefer-a,
// prefer-b and last-modified leave both nodes holding exactly the rows this
// test computes from the same formulas, both synchronized, replicating both
// ways: a new row on either node arrives on the other once, nothing loops.
// A row that never reaches the other node is found by the final verify:
// the run differs and both nodes are diverged, naming the table.
import { query, withClient } from './support/clusters';
import {
  Decide,
  differences,
  expectation,
  keyValues,
  lastModified,
  merged,
  MergePair,
  pairsOf,
  preferA,
  preferB,
  runTables,
  sequenceValues,
} from './support/merge-pair';
import { waitUntil } from './support/wait';

jest.setTimeout(120000);

describe('merge', () => {
  const pairs = pairsOf('merge');
  afterEach(() => pairs.dropAll());

  // The per-table counts of a run as the test expects them.
  const counts = (status: any) =>
    Object.fromEntries(
      Object.entries(runTables(status)).map(([label, t]) => [
        label,
        { rows_a: t.rows_a, rows_b: t.rows_b, identical: t.rows_identical, only_a: t.rows_only_a, only_b: t.rows_only_b, conflicting: t.rows_conflicting },
      ]),
    );
  const expectedCounts = (pair: MergePair, decide?: Decide) =>
    Object.fromEntries(
      Object.entries(expectation(pair.specs, pair.seeded.a, pair.seeded.b, decide)).map(([label, e]) => [
        label,
        { rows_a: e.rows_a, rows_b: e.rows_b, identical: e.identical, only_a: e.only_a, only_b: e.only_b, conflicting: e.conflicting },
      ]),
    );
  const sum = (pair: MergePair, pick: (e: ReturnType<typeof expectation>[string]) => number, decide?: Decide) =>
    Object.values(expectation(pair.specs, pair.seeded.a, pair.seeded.b, decide)).reduce((n, e) => n + pick(e), 0);

  it('--analyze: exact counts and the first keys of each kind per table; nothing written or created on either node', async () => {
    const pair = await pairs.create();
    await pair.startAgent();
    const before = await pair.snapshot();
    const started = await pair.startMerge({ analyze: true });
    expect(started).toMatchObject({ node_a: pair.a.id, node_b: pair.b.id, mode: 'analyze', strategy: null });
    expect([...started.tables].sort()).toEqual([...pair.labels].sort());
    expect(started.follow.status).toBe(`SELECT steep_repl.merge_status(${started.merge_id})`);

    const status = await pair.waitEnd(started.merge_id);
    expect({ state: status.state, error: status.error, mode: status.mode }).toEqual({ state: 'analyzed', error: null, mode: 'analyze' });
    expect(counts(status)).toEqual(expectedCounts(pair));
    // 1000 conflicts in the items table, as the formulas lay them out
    expect(counts(status)[pair.labels[0]].conflicting).toBe(1000);
    const want = expectation(pair.specs, pair.seeded.a, pair.seeded.b);
    for (const spec of pair.specs) {
      const t = runTables(status)[spec.label];
      const sample = t.sample_keys;
      expect({
        label: spec.label,
        only_a: (sample.only_a ?? []).map((k: unknown) => keyValues(spec, k)),
        only_b: (sample.only_b ?? []).map((k: unknown) => keyValues(spec, k)),
        conflicting: (sample.conflicting ?? []).map((k: unknown) => keyValues(spec, k)),
      }).toEqual({ label: spec.label, ...want[spec.label].sample });
      // an analysis writes nothing
      expect({ label: spec.label, to_a: t.rows_to_a, to_b: t.rows_to_b }).toEqual({ label: spec.label, to_a: 0, to_b: 0 });
    }
    expect({
      identical: status.rows_identical,
      only_a: status.rows_only_a,
      only_b: status.rows_only_b,
      conflicting: status.rows_conflicting,
      tables_done: status.tables_done,
    }).toEqual({
      identical: sum(pair, (e) => e.identical),
      only_a: sum(pair, (e) => e.only_a),
      only_b: sum(pair, (e) => e.only_b),
      conflicting: sum(pair, (e) => e.conflicting),
      tables_done: pair.specs.length,
    });
    // nothing recorded as a conflict, nothing changed, no node began anything
    expect(status.conflicts.total).toBe(0);
    expect(await pair.snapshot()).toEqual(before);
    const events = await pair.events();
    expect(events.a.map((e) => e.event)).toEqual(['merge.started', 'merge.completed']);
    expect(events.a[1].details).toMatchObject({ outcome: 'analyzed' });
    expect(events.b).toEqual([]);
  });

  it('--dry-run: the analysis plus what last-modified and prefer-b would write on each node; nothing written', async () => {
    const pair = await pairs.create();
    await pair.startAgent();
    const before = await pair.snapshot();
    for (const [options, decide] of [
      [{ strategy: 'last-modified', column: 'updated_at', dry_run: true }, lastModified('updated_at')],
      [{ strategy: 'prefer-b', dry_run: true }, preferB],
    ] as Array<[Record<string, unknown>, Decide]>) {
      const started = await pair.startMerge(options);
      expect(started).toMatchObject({ mode: 'dry_run', strategy: options.strategy });
      const status = await pair.waitEnd(started.merge_id);
      expect({ strategy: options.strategy, state: status.state, error: status.error }).toEqual({ strategy: options.strategy, state: 'analyzed', error: null });
      expect(counts(status)).toEqual(expectedCounts(pair));
      const want = expectation(pair.specs, pair.seeded.a, pair.seeded.b, decide);
      const got = Object.fromEntries(
        Object.entries(runTables(status)).map(([label, t]) => [label, { won_a: t.conflicts_won_a, won_b: t.conflicts_won_b, to_a: t.rows_to_a, to_b: t.rows_to_b }]),
      );
      expect({ strategy: options.strategy, got }).toEqual({
        strategy: options.strategy,
        got: Object.fromEntries(Object.entries(want).map(([label, e]) => [label, { won_a: e.won_a, won_b: e.won_b, to_a: e.to_a, to_b: e.to_b }])),
      });
      expect({ to_a: status.rows_to_a, to_b: status.rows_to_b }).toEqual({ to_a: sum(pair, (e) => e.to_a, decide), to_b: sum(pair, (e) => e.to_b, decide) });
      expect(await pair.snapshot()).toEqual(before);
    }
    // last-modified really splits: each node wins some conflicts of the items table
    const lm = expectation(pair.specs, pair.seeded.a, pair.seeded.b, lastModified('updated_at'))[pair.labels[0]];
    expect(lm.won_a).toBeGreaterThan(0);
    expect(lm.won_b).toBeGreaterThan(0);
    expect((await pair.events()).b).toEqual([]);
  });

  // A merge by `strategy`: both nodes hold the rows `decide` gives, are
  // synchronized and replicate both ways.
  async function mergeBy(options: Record<string, unknown>, decide: Decide): Promise<void> {
    const pair = await pairs.create();
    await pair.startAgent();
    const started = await pair.startMerge(options);
    expect(started).toMatchObject({ mode: 'merge', strategy: options.strategy, node_a: pair.a.id, node_b: pair.b.id });
    const status = await pair.waitEnd(started.merge_id, 90000);
    expect({ state: status.state, error: status.error, hint: status.hint }).toEqual({ state: 'merged', error: null, hint: null });
    expect(await pair.states()).toEqual({ a: 'synchronized', b: 'synchronized' });

    // the rows: exactly what the strategy gives, on both nodes
    const expected = merged(pair.specs, pair.seeded.a, pair.seeded.b, decide);
    const now = await pair.read();
    expect(differences(now.a, expected)).toEqual({});
    expect(differences(now.b, expected)).toEqual({});
    const hashes = await pair.hashes();
    expect(hashes.b).toEqual(hashes.a);
    // sequences: the larger value on both
    const larger = Math.max(sequenceValues.a, sequenceValues.b);
    for (const url of [pair.a.url, pair.b.url]) expect((await query(url, 'SELECT last_value::int AS v FROM public.ticket_seq'))[0].v).toBe(larger);

    // what the run recorded
    expect(counts(status)).toEqual(expectedCounts(pair));
    const want = expectation(pair.specs, pair.seeded.a, pair.seeded.b, decide);
    for (const [label, t] of Object.entries(runTables(status))) {
      expect({ label, won_a: t.conflicts_won_a, won_b: t.conflicts_won_b, to_a: t.rows_to_a, to_b: t.rows_to_b, verify: t.verify?.status }).toEqual({
        label,
        won_a: want[label].won_a,
        won_b: want[label].won_b,
        to_a: want[label].to_a,
        to_b: want[label].to_b,
        verify: 'equal',
      });
    }
    expect({ to_a: status.rows_to_a, to_b: status.rows_to_b, phase: status.phase, percent: Number(status.percent) }).toEqual({
      to_a: sum(pair, (e) => e.to_a, decide),
      to_b: sum(pair, (e) => e.to_b, decide),
      phase: 'done',
      percent: 100,
    });
    expect(status.lsn_a).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(status.lsn_b).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);

    // each node: an init of method merge from the other, and its replication objects
    const progress = await pair.progress();
    expect(progress.a).toMatchObject({ method: 'merge', source_node_id: pair.b.id, merge: expect.objectContaining({ merge_id: started.merge_id, role: 'a' }) });
    expect(progress.b).toMatchObject({ method: 'merge', source_node_id: pair.a.id, merge: expect.objectContaining({ merge_id: started.merge_id, role: 'b' }) });
    const sources = await Promise.all([
      query(pair.a.url, 'SELECT init_source_node FROM steep_repl.nodes WHERE node_id = $1', [pair.a.id]),
      query(pair.b.url, 'SELECT init_source_node FROM steep_repl.nodes WHERE node_id = $1', [pair.b.id]),
    ]);
    expect(sources.map((r) => r[0].init_source_node)).toEqual([pair.b.id, pair.a.id]);
    expect(await pair.replication()).toEqual(pair.merging());
    const events = await pair.events();
    expect(events.a.map((e) => e.event)).toEqual(['merge.started', 'merge.node_started', 'merge.node_finished', 'merge.completed']);
    expect(events.a[3].details).toMatchObject({ outcome: 'merged' });
    expect(events.b.map((e) => e.event)).toEqual(['merge.node_started', 'merge.node_finished']);
    expect(events.b[1].details).toMatchObject({ merge_id: started.merge_id, outcome: 'synchronized', peer_node: pair.a.id });

    // replication both ways: a row written on either node arrives on the other, once
    const items = pair.labels[0];
    await query(pair.a.url, `INSERT INTO ${items} (id, v) VALUES (900001, 'new on A')`);
    await query(pair.b.url, `INSERT INTO ${items} (id, v) VALUES (900002, 'new on B')`);
    await query(pair.a.url, `UPDATE ${items} SET v = v || ' changed on A' WHERE id = 1`);
    const has = async (url: string, id: number) => (await query(url, `SELECT v FROM ${items} WHERE id = $1`, [id]))[0]?.v;
    await waitUntil('A\'s new row on B', async () => (await has(pair.b.url, 900001)) === 'new on A');
    await waitUntil('B\'s new row on A', async () => (await has(pair.a.url, 900002)) === 'new on B');
    await waitUntil('A\'s change on B', async () => String(await has(pair.b.url, 1)).endsWith(' changed on A'));
    // nothing comes back: a returning insert would break the apply on its key
    await new Promise((r) => setTimeout(r, 2000));
    await pair.settle();
    const errors = async (url: string, sub: string) =>
      (await query(url, 'SELECT (apply_error_count + sync_error_count)::int AS n FROM pg_stat_subscription_stats WHERE subname = $1', [sub]))[0]?.n;
    expect({ a: await errors(pair.a.url, pair.nameBA), b: await errors(pair.b.url, pair.nameAB) }).toEqual({ a: 0, b: 0 });
    for (const url of [pair.a.url, pair.b.url]) {
      const [row] = await query(url, `SELECT count(*) FILTER (WHERE id IN (900001, 900002))::int AS n, count(*)::int AS total FROM ${items}`);
      expect(row).toEqual({ n: 2, total: expected.get(items)!.size + 2 });
    }
    expect(await has(pair.a.url, 1)).toBe(`${expected.get(items)!.get('[1]')!.v} changed on A`);
    const after = await pair.hashes();
    expect(after.b).toEqual(after.a);
    expect(await pair.states()).toEqual({ a: 'synchronized', b: 'synchronized' });
  }

  it('prefer-a: both nodes hold A\'s row of every conflict and every row of either; synchronized; replicating both ways', async () => {
    await mergeBy({ strategy: 'prefer-a' }, preferA);
  });

  it('prefer-b: both nodes hold B\'s row of every conflict and every row of either; synchronized; replicating both ways', async () => {
    await mergeBy({ strategy: 'prefer-b' }, preferB);
  });

  it('last-modified on updated_at (timestamptz, timestamp, date): the later row wins, NULL loses, ties go to A; synchronized; replicating', async () => {
    await mergeBy({ strategy: 'last-modified', column: 'updated_at' }, lastModified('updated_at'));
  });

  it('a row on B that never reaches A (written under an origin of its own after the exchange): the final verify finds it; differs, both diverged', async () => {
    const pair = await pairs.create({ sizes: { shared: 500, conflicts: 100, onlyA: 50, onlyB: 50 } });
    const items = pair.labels[0];
    const agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'verified:3000', STEEP_REPL_VERIFY_WAIT_MS: '5000' });
    const started = await pair.startMerge({ strategy: 'prefer-a' });
    await agent.waitFor((l) => l.event === 'merge.paused', 60000);
    // A's subscription (origin = none) skips a change that carries an origin
    const origin = `hidden_${pair.tag}`;
    await withClient(pair.b.url, async (c) => {
      await c.query('SELECT pg_replication_origin_create($1)', [origin]);
      await c.query('SELECT pg_replication_origin_session_setup($1)', [origin]);
      await c.query(`INSERT INTO ${items} (id, v) VALUES (4000001, 'hidden on B')`);
      await c.query('SELECT pg_replication_origin_session_reset()');
      await c.query('SELECT pg_replication_origin_drop($1)', [origin]);
    });
    const status = await pair.waitEnd(started.merge_id, 90000);
    expect({ state: status.state, error: status.error }).toEqual({ state: 'differs', error: null });
    expect(runTables(status)[items].verify).toMatchObject({ status: 'differs', rows_missing: 0, rows_extra: 1, rows_different: 0 });
    for (const label of pair.labels.slice(1)) expect({ label, verify: runTables(status)[label].verify.status }).toEqual({ label, verify: 'equal' });
    expect(await pair.states()).toEqual({ a: 'diverged', b: 'diverged' });
    // each node names the table and the peer it differs from
    for (const [db, peer] of [
      [pair.a, pair.b],
      [pair.b, pair.a],
    ]) {
      const rows = await query(
        db.url,
        'SELECT schema_name, table_name, peer_node_id, (rows_missing + rows_extra + rows_different)::int AS n FROM steep_repl.node_divergence WHERE node_id = $1',
        [db.id],
      );
      expect(rows).toEqual([{ schema_name: pair.specs[0].schema, table_name: pair.specs[0].name, peer_node_id: peer.id, n: 1 }]);
    }
    const events = await pair.events();
    expect(events.a.filter((e) => e.event === 'merge.completed').map((e) => e.details.outcome)).toEqual(['differs']);
    // apart from that row, both hold what prefer-a gives, and they still replicate
    const expected = merged(pair.specs, pair.seeded.a, pair.seeded.b, preferA);
    const now = await pair.read();
    expect(differences(now.a, expected)).toEqual({});
    now.b.get(items)!.delete('[4000001]');
    expect(differences(now.b, expected)).toEqual({});
    expect(await pair.replication()).toEqual(pair.merging());
  });
});
