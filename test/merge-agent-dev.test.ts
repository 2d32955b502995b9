// H2's own end-to-end check of the merge job while it is written (H4 owns
// the real merge tests): analysis and prefer-a, kills and resume, a
// concurrent key, a cancel after the exchange, manual record and apply.
import { query, withClient } from './support/clusters';
import { cloneTables, differences, itemsWriter, lastModified, merged, pairsOf, preferA, preferB, runTables, stopWriters } from './support/merge-pair';
import { AgentProcess } from './support/processes';
import { waitUntil } from './support/wait';

jest.setTimeout(120000);

const small = { sizes: { shared: 300, conflicts: 120, onlyA: 40, onlyB: 50 } };
const pausedAt = (agent: AgentProcess) => agent.waitFor((l) => l.event === 'merge.paused', 30000);
const dump = (agent: AgentProcess) => agent.raw.filter((l) => l.includes('merge.')).join('\n');

describe('merge agent (dev)', () => {
  const pairs = pairsOf('mergedev');
  afterEach(() => pairs.dropAll());

  it('analyzes, then merges prefer-a and replicates both ways', async () => {
    const pair = await pairs.create(small);
    const agent = await pair.startAgent({ STEEP_REPL_VERIFY_ROWS_PER_RANGE: '100' });
    const analysis = await pair.startMerge({ analyze: true });
    const analyzed = await pair.waitEnd(analysis.merge_id);
    expect({ state: analyzed.state, error: analyzed.error }).toEqual({ state: 'analyzed', error: null });
    expect(runTables(analyzed)[pair.labels[0]]).toMatchObject({ rows_only_a: 40, rows_only_b: 50, rows_conflicting: 120, rows_identical: 300 });

    const started = await pair.startMerge({ strategy: 'prefer-a' });
    const status = await pair.waitEnd(started.merge_id, 90000);
    if (status.state !== 'merged') console.log(dump(agent));
    expect({ state: status.state, error: status.error }).toEqual({ state: 'merged', error: null });
    expect(await pair.states()).toEqual({ a: 'synchronized', b: 'synchronized' });
    const now = await pair.read();
    const want = merged(pair.specs, pair.seeded.a, pair.seeded.b, preferA);
    expect(differences(now.a, want)).toEqual({});
    expect(differences(now.b, want)).toEqual({});
    expect(await pair.replication()).toEqual(pair.merging());
    const items = pair.labels[0];
    await query(pair.a.url, `INSERT INTO ${items} (id, v) VALUES (900001, 'new on a')`);
    await query(pair.b.url, `INSERT INTO ${items} (id, v) VALUES (900002, 'new on b')`);
    await waitUntil('both new rows on both', async () => {
      const [ca] = await query(pair.a.url, `SELECT count(*)::int AS n FROM ${items} WHERE id > 900000`);
      const [cb] = await query(pair.b.url, `SELECT count(*)::int AS n FROM ${items} WHERE id > 900000`);
      return ca.n === 2 && cb.n === 2;
    }, 20000);
  });

  it('killed while comparing and after the exchange: resumes and merges prefer-b', async () => {
    const pair = await pairs.create(small);
    let agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'compared:60000' });
    const started = await pair.startMerge({ strategy: 'prefer-b' });
    await pausedAt(agent);
    await agent.stop('SIGKILL');
    expect(await pair.states()).toEqual({ a: 'copying', b: 'copying' });
    agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'subscribed:60000' });
    await pausedAt(agent);
    await agent.stop('SIGKILL');
    expect((await pair.status(started.merge_id)).step).toBe('exchanged');
    agent = await pair.startAgent();
    const status = await pair.waitEnd(started.merge_id, 90000);
    if (status.state !== 'merged') console.log(dump(agent));
    expect({ state: status.state, error: status.error }).toEqual({ state: 'merged', error: null });
    const want = merged(pair.specs, pair.seeded.a, pair.seeded.b, preferB);
    const now = await pair.read();
    expect(differences(now.a, want)).toEqual({});
    expect(differences(now.b, want)).toEqual({});
    const events = await pair.events();
    expect(events.a.map((e) => e.event)).toEqual(['merge.started', 'merge.node_started', 'merge.node_finished', 'merge.completed']);
    expect(await pair.replication()).toEqual(pair.merging());
  });

  it('a key written on B during the merge: concurrent, nothing exchanged; a cancel from B after the exchange', async () => {
    const pair = await pairs.create(small);
    const items = pair.labels[0];
    let agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'exchanged:3000' });
    const started = await pair.startMerge({ strategy: 'prefer-a' });
    await pausedAt(agent);
    await query(pair.b.url, `INSERT INTO ${items} (id, v, n) VALUES (10001, 'written on B during the merge', 1)`);
    const failed = await pair.waitEnd(started.merge_id, 60000);
    if (failed.failure_kind !== 'concurrent') console.log(dump(agent));
    expect({ state: failed.state, kind: failed.failure_kind }).toEqual({ state: 'failed', kind: 'concurrent' });
    console.log(failed.error, failed.hint);
    const b = cloneTables(pair.seeded.b);
    b.get(items)!.set('[10001]', { id: 10001, v: 'written on B during the merge', n: 1, updated_at: null });
    const now = await pair.read();
    expect(differences(now.a, pair.seeded.a)).toEqual({});
    expect(differences(now.b, b)).toEqual({});
    expect(await pair.states()).toEqual({ a: 'failed', b: 'failed' });

    await agent.stop();
    agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'subscribed:60000' });
    const again = await pair.startMerge({ strategy: 'prefer-a' });
    await pausedAt(agent);
    await query(pair.b.url, 'SELECT steep_repl.cancel_merge($1)', [pair.b.id]);
    const cancelled = await pair.waitEnd(again.merge_id, 30000);
    if (cancelled.state !== 'cancelled') console.log(dump(agent));
    expect(cancelled.state).toBe('cancelled');
    expect(await pair.states()).toEqual({ a: 'uninitialized', b: 'uninitialized' });
    const none = { slots: [], publications: [], subscriptions: [] };
    expect(await pair.replication()).toEqual({ a: none, b: none });
    const want = merged(pair.specs, pair.seeded.a, b, preferA);
    const after = await pair.read();
    expect(differences(after.a, want)).toEqual({});
    expect(differences(after.b, want)).toEqual({});
  });

  it('manual: record, resolve (a, b, row), apply', async () => {
    const pair = await pairs.create(small);
    const agent = await pair.startAgent();
    const rec = await pair.startMerge({ strategy: 'manual' });
    const recorded = await pair.waitEnd(rec.merge_id);
    expect({ state: recorded.state, error: recorded.error }).toEqual({ state: 'resolving', error: null });
    await query(pair.a.url, "SELECT steep_repl.resolve_merge_conflicts($1, 'b')", [rec.merge_id]);
    await query(pair.a.url, "UPDATE steep_repl.merge_conflicts SET resolution = 'a' WHERE merge_id = $1 AND table_name = 'Items Ä' AND (key ->> 'id')::int % 2 = 0", [rec.merge_id]);
    await query(pair.a.url, "SELECT steep_repl.resolve_merge_conflicts($1, 'row', $2, $3, $4)", [
      rec.merge_id,
      pair.labels[0],
      { id: 301 },
      { id: 301, v: 'by hand', n: 1.5, updated_at: null },
    ]);
    const started = await pair.startMerge({ strategy: 'manual', apply: true });
    const status = await pair.waitEnd(started.merge_id, 90000);
    if (status.state !== 'merged') console.log(dump(agent));
    expect({ state: status.state, error: status.error }).toEqual({ state: 'merged', error: null });
    const now = await pair.read();
    const want = merged(pair.specs, pair.seeded.a, pair.seeded.b, (spec, key, a, bRow) => {
      if (spec.label !== pair.labels[0]) return bRow;
      const id = JSON.parse(key)[0];
      if (id === 301) return { id: 301, v: 'by hand', n: 1.5, updated_at: null };
      return id % 2 === 0 ? a : bRow;
    });
    expect(differences(now.a, want)).toEqual({});
    expect(differences(now.b, want)).toEqual({});
  });

  it('writers on both nodes through a last-modified merge: nothing lost', async () => {
    const pair = await pairs.create(small);
    const agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'exchanged:3000' });
    const wa = itemsWriter(pair, 'a', 1_000_000);
    const wb = itemsWriter(pair, 'b', 2_000_000);
    let status: any;
    try {
      await waitUntil('writes on both', () => wa.writer.counts.transactions > 10 && wb.writer.counts.transactions > 10);
      const started = await pair.startMerge({ strategy: 'last-modified', column: 'updated_at' });
      status = await pair.waitEnd(started.merge_id, 90000);
      const [ta, tb] = [wa.writer.counts.transactions, wb.writer.counts.transactions];
      await waitUntil('writes after', () => wa.writer.counts.transactions > ta + 10 && wb.writer.counts.transactions > tb + 10);
    } finally {
      await stopWriters([wa, wb]);
    }
    if (status.state !== 'merged') console.log(dump(agent));
    expect({ state: status.state, error: status.error }).toEqual({ state: 'merged', error: null });
    await pair.settle();
    const expected = merged(pair.specs, pair.seeded.a, pair.seeded.b, lastModified('updated_at'));
    wa.replay(expected);
    wb.replay(expected);
    const now = await pair.read();
    expect(differences(now.a, expected)).toEqual({});
    expect(differences(now.b, expected)).toEqual({});
  });

  it('--quiesce with a write since the merge point: failed, kind quiesce', async () => {
    const pair = await pairs.create(small);
    const agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'exchanged:2000' });
    const started = await pair.startMerge({ strategy: 'prefer-a', quiesce: true });
    await pausedAt(agent);
    await query(pair.b.url, `INSERT INTO ${pair.labels[0]} (id, v) VALUES (3000001, 'during')`);
    const failed = await pair.waitEnd(started.merge_id, 60000);
    console.log(failed.error);
    expect({ state: failed.state, kind: failed.failure_kind }).toEqual({ state: 'failed', kind: 'quiesce' });
    const none = { slots: [], publications: [], subscriptions: [] };
    expect(await pair.replication()).toEqual({ a: none, b: none });
  });

  it('a row on B that never replicates: the final verify finds it, differs, both diverged', async () => {
    const pair = await pairs.create(small);
    const agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'verified:3000', STEEP_REPL_VERIFY_WAIT_MS: '5000' });
    const started = await pair.startMerge({ strategy: 'prefer-a' });
    await pausedAt(agent);
    await withClient(pair.b.url, async (c) => {
      await c.query("SELECT pg_replication_origin_create('mergedev_hidden')");
      await c.query("SELECT pg_replication_origin_session_setup('mergedev_hidden')");
      await c.query(`INSERT INTO ${pair.labels[0]} (id, v) VALUES (4000001, 'hidden on B')`);
      await c.query('SELECT pg_replication_origin_session_reset()');
      await c.query("SELECT pg_replication_origin_drop('mergedev_hidden')");
    });
    const status = await pair.waitEnd(started.merge_id, 90000);
    if (status.state !== 'differs') console.log(dump(agent));
    expect({ state: status.state, error: status.error }).toEqual({ state: 'differs', error: null });
    expect(runTables(status)[pair.labels[0]].verify).toMatchObject({ status: 'differs', rows_extra: 1 });
    expect(await pair.states()).toEqual({ a: 'diverged', b: 'diverged' });
  });

  it('the child table alone, prefer-b: its rows from B refer to parents A lacks: failed, nothing exchanged', async () => {
    const pair = await pairs.create(small);
    const agent = await pair.startAgent();
    const started = await pair.startMerge({ strategy: 'prefer-b', tables: ['public."Child ""Rows"""'] });
    const status = await pair.waitEnd(started.merge_id, 60000);
    console.log(status.error, '|', status.hint);
    if (status.state !== 'failed') console.log(dump(agent));
    expect({ state: status.state, kind: status.failure_kind }).toEqual({ state: 'failed', kind: 'error' });
    expect(status.error).toContain('child → parent');
    const now = await pair.read();
    expect(differences(now.a, pair.seeded.a)).toEqual({});
    expect(differences(now.b, pair.seeded.b)).toEqual({});
    expect(await pair.states()).toEqual({ a: 'failed', b: 'failed' });
  });

  it('a row A gives B that another unique constraint on B refuses: failed, recorded as unique, nothing exchanged', async () => {
    const pair = await pairs.create(small);
    const items = pair.labels[0];
    for (const url of [pair.a.url, pair.b.url]) await query(url, `CREATE UNIQUE INDEX ON ${items} (v)`);
    await query(pair.b.url, `INSERT INTO ${items} (id, v) VALUES (999999, 'only a 10001')`);
    const agent = await pair.startAgent();
    const started = await pair.startMerge({ strategy: 'prefer-a' });
    const status = await pair.waitEnd(started.merge_id, 60000);
    console.log(status.error, '|', status.hint);
    if (status.state !== 'failed') console.log(dump(agent));
    expect({ state: status.state, kind: status.failure_kind }).toEqual({ state: 'failed', kind: 'concurrent' });
    expect(status.error).toContain('violates a unique constraint');
    const recorded = await query(pair.a.url, "SELECT key, kind, row_a ->> 'v' AS a, row_b FROM steep_repl.merge_conflicts WHERE merge_id = $1", [started.merge_id]);
    // and B's own row, which A's row of the same v refuses on A
    expect(recorded.sort((x, y) => x.key.id - y.key.id)).toEqual([
      { key: { id: 10001 }, kind: 'unique', a: 'only a 10001', row_b: null },
      { key: { id: 999999 }, kind: 'unique', a: null, row_b: expect.objectContaining({ v: 'only a 10001' }) },
    ]);
    const now = await pair.read();
    expect(differences(now.a, pair.seeded.a)).toEqual({});
  });
});
