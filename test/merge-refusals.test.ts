// What a merge refuses, on real servers, and that a refusal changes
// nothing: neither node's state, progress, rows, sequences nor replication
// objects (slots, publications, subscriptions). start_merge refuses bad
// options, unknown nodes, a node merged with itself, scopes that name
// nothing, a table without a primary key, a last-modified column that is
// missing or not a timestamp, a node that is not uninitialized, --apply
// without a manual run and a second merge while one is queued. What only
// node B's database can tell (a column of another type, a table A lacks, a
// database that is not node B's, node B not uninitialized) the job finds
// before it writes anything: the run fails and both nodes are as they were.
// Rows whose parent the other node lacks (the child table merged alone),
// and a row that another unique constraint stops on the other node, fail
// the exchange with nothing written (the unique keys recorded, kind
// unique); the nodes, failed, merge again once it is fixed.
import { escapeIdentifier } from 'pg';
import { clusterB, createDatabase, dropDatabase, query } from './support/clusters';
import { MergePair, pairsOf, replicationObjects } from './support/merge-pair';
import { createNodeDb, NodeDb, registerIn } from './support/node-pair';

jest.setTimeout(120000);

describe('merge refusals', () => {
  const pairs = pairsOf('merge_refuse');
  let pair: MergePair;
  // the refusals change nothing: one pair for the file
  beforeAll(async () => {
    pair = await pairs.create({ sizes: { shared: 300, conflicts: 50, onlyA: 20, onlyB: 30 } });
  });
  afterAll(() => pairs.dropAll());

  const runs = async () => (await query(pair.a.url, 'SELECT count(*)::int AS n FROM steep_repl.merge_runs'))[0].n;
  const jobs = async () => (await query(pair.a.url, "SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE key LIKE 'merge:%'"))[0].n;
  const walk = async (db: NodeDb, states: string[]) => {
    for (const state of states) await query(db.url, 'SELECT steep_repl.transition($1, $2, $3)', [db.id, state, { reason: 'test' }]);
  };
  const items = () => pair.specs[0];

  it('bad options, unknown nodes, a node merged with itself, the wrong database, scopes that name nothing: refused, nothing written', async () => {
    const before = { snapshot: await pair.snapshot(), runs: await runs(), jobs: await jobs() };
    const cases: Array<[string, Record<string, unknown>, string, { a?: string; b?: string; on?: 'a' | 'b' }?]> = [
      ['neither analyze nor a strategy', {}, 'SR004'],
      ['analyze and a strategy', { analyze: true, strategy: 'prefer-a' }, 'SR004'],
      ['an unknown strategy', { strategy: 'prefer-c' }, 'SR004'],
      ['an unknown option', { analyze: true, colour: 'red' }, 'SR004'],
      ['analyze not a boolean', { analyze: 'yes' }, 'SR004'],
      ['a dry run without a strategy', { dry_run: true }, 'SR004'],
      ['apply without manual', { strategy: 'prefer-a', apply: true }, 'SR004'],
      ['apply with a dry run', { strategy: 'manual', apply: true, dry_run: true }, 'SR004'],
      ['apply without a manual run (a state: nothing recorded)', { strategy: 'manual', apply: true }, 'SR003'],
      ['a column without last-modified', { strategy: 'prefer-a', column: 'updated_at' }, 'SR004'],
      ['last-modified without a column', { strategy: 'last-modified' }, 'SR004'],
      ['timeout 0', { strategy: 'prefer-a', timeout: 0 }, 'SR004'],
      ['timeout beyond a day', { strategy: 'prefer-a', timeout: 86401 }, 'SR004'],
      ['timeout not a number', { strategy: 'prefer-a', timeout: 'soon' }, 'SR004'],
      ['an unknown table', { analyze: true, tables: [items().label, 'public.nope'] }, 'SR004'],
      ['no tables', { analyze: true, tables: [] }, 'SR004'],
      ['an unknown schema', { analyze: true, schema: 'no such schema' }, 'SR004'],
      ['tables and a schema', { analyze: true, tables: ['parent'], schema: 'public' }, 'SR004'],
      ['an unknown node B', { analyze: true }, 'SR001', { b: 'nobody at all' }],
      ['an unknown node A', { analyze: true }, 'SR001', { a: 'nobody at all' }],
      ['A merged with itself', { strategy: 'prefer-a' }, 'SR004', { b: pair.a.id }],
      ['on node B\'s database', { strategy: 'prefer-a' }, 'SR004', { on: 'b' }],
      ['node B as A on A\'s database', { strategy: 'prefer-a' }, 'SR004', { a: pair.b.id, b: pair.a.id }],
    ];
    const got: unknown[] = [];
    for (const [what, options, , nodes] of cases) {
      const err = await pair.refusedMerge(options, nodes);
      got.push({ what, code: err.code, message: err.message.length > 10 });
    }
    expect(got).toEqual(cases.map(([what, , code]) => ({ what, code, message: true })));
    // the messages name what is wrong
    expect((await pair.refusedMerge({ analyze: true, tables: ['public.nope'] })).message).toContain('public.nope');
    expect((await pair.refusedMerge({ analyze: true, colour: 'red' })).message).toContain('colour');
    expect((await pair.refusedMerge({ analyze: true }, { b: 'nobody at all' })).message).toContain('nobody at all');
    expect({ snapshot: await pair.snapshot(), runs: await runs(), jobs: await jobs() }).toEqual(before);
  });

  it('a table without a primary key: refused naming it, in every mode; the tables that have one may be merged', async () => {
    await Promise.all([pair.a.url, pair.b.url].map((url) => query(url, 'CREATE TABLE public."No Key ☹" (v text, n int)')));
    try {
      const before = { snapshot: await pair.snapshot(), runs: await runs(), jobs: await jobs() };
      for (const options of [{ analyze: true }, { strategy: 'prefer-a' }, { strategy: 'manual' }, { strategy: 'prefer-b', dry_run: true }]) {
        const err = await pair.refusedMerge(options);
        expect({ options, code: err.code }).toEqual({ options, code: 'SR004' });
        expect(err.message).toContain('public."No Key ☹"');
        expect(err.message).toContain('a merge matches rows by primary key');
      }
      const named = await pair.refusedMerge({ analyze: true, tables: ['public."No Key ☹"', 'parent'] });
      expect(named.message).toContain('public."No Key ☹"');
      expect({ snapshot: await pair.snapshot(), runs: await runs(), jobs: await jobs() }).toEqual(before);

      // scoped to tables with keys it is accepted; no agent runs, so it
      // stays queued: a second merge is refused as busy, the cancel ends it
      const keyed = ['parent', 'public."Child ""Rows"""'];
      const started = await pair.startMerge({ strategy: 'prefer-a', tables: keyed });
      expect([...started.tables].sort()).toEqual(['public."Child ""Rows"""', 'public.parent']);
      const busy = await pair.refusedMerge({ analyze: true, tables: keyed });
      expect(busy.code).toBe('SR006');
      const [{ r: cancelled }] = await query(pair.a.url, 'SELECT steep_repl.cancel_merge($1) AS r', [pair.a.id]);
      expect(cancelled).toMatchObject({ merge_id: started.merge_id, cancelled: true });
      const status = await pair.status(started.merge_id);
      expect(status.state).toBe('cancelled');
      expect(await jobs()).toBe(0);
      expect(await pair.snapshot()).toEqual(before.snapshot);
      // nothing left to cancel
      await expect(query(pair.a.url, 'SELECT steep_repl.cancel_merge($1)', [pair.a.id])).rejects.toMatchObject({ code: 'SR003' });
    } finally {
      await Promise.all([pair.a.url, pair.b.url].map((url) => query(url, 'DROP TABLE public."No Key ☹"')));
    }
  });

  it('last-modified with a column some tables lack, or one that is not a timestamp: refused naming the tables and the type', async () => {
    await query(pair.a.url, `ALTER TABLE ${items().label} ADD COLUMN changed_at timestamptz`);
    try {
      const before = { snapshot: await pair.snapshot(), runs: await runs() };
      const missing = await pair.refusedMerge({ strategy: 'last-modified', column: 'changed_at' });
      expect(missing.code).toBe('SR004');
      for (const label of pair.labels.slice(1)) expect(missing.message).toContain(label);
      expect(missing.message).not.toContain('Items Ä');
      const text = await pair.refusedMerge({ strategy: 'last-modified', column: 'v', tables: [items().label] });
      expect(text.code).toBe('SR004');
      expect(text.message).toContain('Items Ä');
      expect(text.message).toContain('text');
      const int = await pair.refusedMerge({ strategy: 'last-modified', column: 'name_len', tables: ['parent'], dry_run: true });
      expect(int.code).toBe('SR004');
      expect(int.message).toContain('integer');
      expect({ snapshot: await pair.snapshot(), runs: await runs() }).toEqual(before);
    } finally {
      await query(pair.a.url, `ALTER TABLE ${items().label} DROP COLUMN changed_at`);
    }
  });

  it('node A not uninitialized (synchronized): a merge is refused (SR003); A as it was', async () => {
    await walk(pair.a, ['preparing', 'copying', 'catching_up', 'synchronized']);
    try {
      const before = { snapshot: await pair.snapshot(), runs: await runs() };
      for (const strategy of ['prefer-a', 'last-modified']) {
        const err = await pair.refusedMerge({ strategy, column: strategy === 'last-modified' ? 'updated_at' : undefined });
        expect({ strategy, code: err.code }).toEqual({ strategy, code: 'SR003' });
        expect(err.message).toContain('synchronized');
      }
      expect({ snapshot: await pair.snapshot(), runs: await runs() }).toEqual(before);
    } finally {
      await walk(pair.a, ['uninitialized']);
    }
  });

  describe('found by the job on node B', () => {
    beforeAll(async () => {
      await pair.startAgent();
    });

    // The run fails with `kind`; neither node changed.
    async function refusedByJob(options: Record<string, unknown>, kind: string, nodeB?: string): Promise<any> {
      const before = await pair.snapshot();
      const started = nodeB
        ? (await query(pair.a.url, 'SELECT steep_repl.start_merge($1, $2, $3) AS r', [pair.a.id, nodeB, options]))[0].r
        : await pair.startMerge(options);
      const status = await pair.waitEnd(started.merge_id);
      expect({ options, state: status.state, kind: status.failure_kind }).toEqual({ options, state: 'failed', kind });
      expect(await pair.snapshot()).toEqual(before);
      expect(await pair.replication()).toEqual({
        a: { slots: [], publications: [], subscriptions: [] },
        b: { slots: [], publications: [], subscriptions: [] },
      });
      return status;
    }

    it('a column of another type on B: failed, kind schema, naming the table; nothing changed, in every mode', async () => {
      await query(pair.b.url, `ALTER TABLE ${items().label} ALTER COLUMN n TYPE text`);
      try {
        for (const options of [{ strategy: 'prefer-a' }, { analyze: true }, { strategy: 'last-modified', column: 'updated_at' }]) {
          const status = await refusedByJob(options, 'schema');
          expect(status.error).toContain('Items Ä');
        }
      } finally {
        await query(pair.b.url, `ALTER TABLE ${items().label} ALTER COLUMN n TYPE numeric(10,2) USING n::numeric(10,2)`);
      }
    });

    it('a last-modified column that is a timestamp on A and text on B: failed, kind schema; nothing changed', async () => {
      await query(pair.b.url, 'ALTER TABLE public.parent ALTER COLUMN updated_at TYPE text');
      try {
        const status = await refusedByJob({ strategy: 'last-modified', column: 'updated_at', tables: ['parent'] }, 'schema');
        expect(status.error).toContain('parent');
      } finally {
        await query(pair.b.url, 'ALTER TABLE public.parent ALTER COLUMN updated_at TYPE timestamp USING updated_at::timestamp');
      }
    });

    it('a table only on B (no scope given): failed, kind schema, naming it; nothing changed', async () => {
      await query(pair.b.url, 'CREATE TABLE public."Only On B" (id int PRIMARY KEY)');
      try {
        const status = await refusedByJob({ strategy: 'prefer-b' }, 'schema');
        expect(status.error).toContain('Only On B');
      } finally {
        await query(pair.b.url, 'DROP TABLE public."Only On B"');
      }
    });

    it('a registry row whose database is another node\'s, or has no steep_repl: failed, kind refused; nothing changed', async () => {
      const other = await createNodeDb(clusterB(), `${pair.tag}_c`, `other C ${pair.tag}`);
      const bare = await createDatabase(clusterB(), `${pair.tag}_bare`);
      try {
        await registerIn(other, other);
        const impostor = { ...other, id: `impostor ${pair.tag}` };
        await registerIn(pair.a, impostor);
        const status = await refusedByJob({ strategy: 'prefer-a' }, 'refused', impostor.id);
        expect(status.error).toContain(impostor.id);
        const empty = { id: `no steep_repl ${pair.tag}`, cluster: clusterB(), ...bare };
        await registerIn(pair.a, empty);
        const none = await refusedByJob({ analyze: true }, 'refused', empty.id);
        expect(none.error).toContain('steep_repl');
        // the other database untouched too
        expect(await replicationObjects(other.url)).toEqual({ slots: [], publications: [], subscriptions: [] });
      } finally {
        await dropDatabase(clusterB(), other.name);
        await dropDatabase(clusterB(), bare.name);
      }
    });

    it('node B not uninitialized (synchronized): failed, kind refused; A back to uninitialized, B still synchronized', async () => {
      await walk(pair.b, ['preparing', 'copying', 'catching_up', 'synchronized']);
      try {
        const status = await refusedByJob({ strategy: 'prefer-a' }, 'refused');
        expect(status.error).toContain('synchronized');
        expect(await pair.states()).toEqual({ a: 'uninitialized', b: 'synchronized' });
      } finally {
        await walk(pair.b, ['uninitialized']);
      }
    });

    it('the child table alone, B\'s children referring to parents A lacks: failed naming the foreign key, nothing exchanged; both failed', async () => {
      const before = (await pair.snapshot()) as any;
      const started = await pair.startMerge({ strategy: 'prefer-b', tables: ['public."Child ""Rows"""'] });
      const status = await pair.waitEnd(started.merge_id);
      expect({ state: status.state, kind: status.failure_kind }).toEqual({ state: 'failed', kind: 'error' });
      expect(status.error).toContain('child → parent');
      const after = (await pair.snapshot()) as any;
      for (const side of ['a', 'b'] as const) {
        expect({ side, hashes: after[side].hashes, replication: after[side].replication }).toEqual({
          side,
          hashes: before[side].hashes,
          replication: before[side].replication,
        });
      }
      expect(await pair.states()).toEqual({ a: 'failed', b: 'failed' });
    });

    it('a row another unique constraint stops on the other node: failed, recorded as unique, nothing exchanged; both nodes failed', async () => {
      await Promise.all([pair.a.url, pair.b.url].map((url) => query(url, 'ALTER TABLE public.parent ADD CONSTRAINT "parent name" UNIQUE (name)')));
      await query(pair.a.url, "INSERT INTO public.parent (id, name) VALUES (150, 'the same name')");
      await query(pair.b.url, "INSERT INTO public.parent (id, name) VALUES (250, 'the same name')");
      try {
        const before = (await pair.snapshot()) as any;
        const started = await pair.startMerge({ strategy: 'prefer-a' });
        const status = await pair.waitEnd(started.merge_id);
        expect({ state: status.state, kind: status.failure_kind }).toEqual({ state: 'failed', kind: 'concurrent' });
        expect(status.error).toContain('unique constraint');
        expect(status.error).toContain('parent');
        const recorded = await query(pair.a.url, "SELECT (key ->> 'id')::int AS id, kind FROM steep_repl.merge_conflicts WHERE merge_id = $1 ORDER BY 1", [started.merge_id]);
        expect(recorded.length).toBeGreaterThan(0);
        for (const r of recorded) expect([150, 250]).toContain(r.id);
        expect(new Set(recorded.map((r) => r.kind))).toEqual(new Set(['unique']));
        const after = (await pair.snapshot()) as any;
        for (const side of ['a', 'b'] as const) {
          expect({ side, hashes: after[side].hashes, replication: after[side].replication, sequence: after[side].sequence }).toEqual({
            side,
            hashes: before[side].hashes,
            replication: before[side].replication,
            sequence: before[side].sequence,
          });
        }
        expect(await pair.states()).toEqual({ a: 'failed', b: 'failed' });
      } finally {
        await query(pair.a.url, 'DELETE FROM public.parent WHERE id = 150');
        await query(pair.b.url, 'DELETE FROM public.parent WHERE id = 250');
        await Promise.all([pair.a.url, pair.b.url].map((url) => query(url, 'ALTER TABLE public.parent DROP CONSTRAINT "parent name"')));
      }
    });

    it('after all of these, the same pair merges (nothing was left half done; failed nodes merge again), also with B left in a merge that ended while B was away', async () => {
      // B's part of a merge whose run ended on A without B hearing of it (B unreachable then)
      const ended = await pair.startMerge({ analyze: true });
      expect((await pair.waitEnd(ended.merge_id)).state).toBe('analyzed');
      await query(pair.b.url, 'SELECT steep_repl.merge_node_begin($1, $2, $3)', [
        pair.b.id,
        pair.a.id,
        { merge_id: ended.merge_id, coordinator: pair.a.id, role: 'b', strategy: 'prefer-a', tables_total: 2 },
      ]);
      expect((await pair.states()).b).toBe('preparing');

      const started = await pair.startMerge({ strategy: 'prefer-a', tables: [escapeIdentifier('public') + '.parent', 'public."Child ""Rows"""'] });
      const status = await pair.waitEnd(started.merge_id, 90000);
      expect({ state: status.state, error: status.error }).toEqual({ state: 'merged', error: null });
      const endedOnB = await query(pair.b.url, "SELECT details FROM steep_repl.audit_log WHERE event = 'merge.node_finished' AND (details ->> 'merge_id')::int8 = $1", [
        ended.merge_id,
      ]);
      expect(endedOnB.map((r) => [r.details.outcome, r.details.error])).toEqual([['failed', expect.stringMatching(/ended analyzed on node .* while this node was unreachable/)]]);
      const hashes = await pair.hashes();
      expect(hashes.b['public.parent']).toBe(hashes.a['public.parent']);
      expect(hashes.b['public."Child ""Rows"""']).toBe(hashes.a['public."Child ""Rows"""']);
    });
  });
});
