// An online merge on real servers: writers on both nodes (keys of their
// own: inserts, updates of rows they wrote, renames of rows only their node
// held) all through a merge that pauses between its merge points and the
// exchange (STEEP_REPL_MERGE_PAUSE_AT), so writes land after the snapshots
// were taken. Nothing is lost: both nodes end identical, holding the
// strategy's rows with every write applied, computed here from the
// formulas and the writers' own record; a conflict changed during the
// merge on the losing node keeps that change, on the winning node its
// change follows its row. A cancel before the exchange
// changes nothing; one after it leaves the exchanged rows and no
// replication. The same key written on the other node during the merge is
// found, nothing is exchanged and the keys are recorded (kind concurrent);
// a second merge resolves them by the strategy. --quiesce fails on any
// write since the merge point.
import { query } from './support/clusters';
import {
  cloneTables,
  differences,
  itemsWriter,
  merged,
  pairsOf,
  preferA,
  preferB,
  runTables,
  stopWriters,
} from './support/merge-pair';
import { ChannelRecorder } from './support/notifications';
import { AgentProcess } from './support/processes';
import { waitUntil } from './support/wait';

jest.setTimeout(150000);

describe('online merge', () => {
  const pairs = pairsOf('merge_online');
  afterEach(() => pairs.dropAll());

  const pausedAt = (agent: AgentProcess) => agent.waitFor((l) => l.event === 'merge.paused', 60000);
  const none = { slots: [], publications: [], subscriptions: [] };

  it('writers on both nodes through the whole merge: merged, both identical, every write there', async () => {
    const pair = await pairs.create();
    const items = pair.labels[0];
    const agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'exchanged:6000' });
    const recorder = await ChannelRecorder.listen(pair.a.url, ['steep_repl_progress']);
    const wa = itemsWriter(pair, 'a', 1_000_000);
    const wb = itemsWriter(pair, 'b', 2_000_000);
    let status: any;
    let verified: any;
    try {
      await waitUntil('writes on both nodes', () => wa.writer.counts.transactions > 20 && wb.writer.counts.transactions > 20);
      const started = await pair.startMerge({ strategy: 'prefer-b' });
      await pausedAt(agent);
      // a conflict changed on the node whose row loses (A, prefer-b), and one on the node whose row wins
      await query(pair.a.url, `UPDATE ${items} SET v = 'changed on A during the merge' WHERE id = 2001`);
      await query(pair.b.url, `UPDATE ${items} SET v = 'changed on B during the merge' WHERE id = 2002`);
      const during = await pair.status(started.merge_id);
      expect({ state: during.state, step: during.step }).toEqual({ state: 'running', step: 'compared' });
      expect(await pair.states()).toEqual({ a: 'copying', b: 'copying' });
      // writes after the merge points, before the exchange
      const [ta, tb] = [wa.writer.counts.transactions, wb.writer.counts.transactions];
      await waitUntil('writes during the pause', () => wa.writer.counts.transactions > ta + 20 && wb.writer.counts.transactions > tb + 20, 20000);
      status = await pair.waitEnd(started.merge_id, 120000);
      // and writes after the merge, through the subscriptions
      const [ua, ub] = [wa.writer.counts.transactions, wb.writer.counts.transactions];
      await waitUntil('writes after the merge', () => wa.writer.counts.transactions > ua + 20 && wb.writer.counts.transactions > ub + 20, 20000);
      // node verify of the merged pair while both nodes write: rows in flight either way are no difference
      const [{ v }] = await query(pair.a.url, 'SELECT steep_repl.start_verify($1, $2) AS v', [pair.a.id, pair.b.id]);
      verified = await waitUntil(
        'the verify of the merged pair',
        async () => {
          const [{ s }] = await query(pair.a.url, 'SELECT steep_repl.verify_status($1) AS s', [v.verify_id]);
          return !['queued', 'running'].includes(s.state) && s;
        },
        60000,
      );
    } finally {
      await stopWriters([wa, wb]);
      await recorder.close();
    }
    expect({ state: status.state, error: status.error }).toEqual({ state: 'merged', error: null });
    expect({ state: verified.state, differing: verified.tables_differing, error: verified.error }).toEqual({ state: 'equal', differing: 0, error: null });
    expect(await pair.states()).toEqual({ a: 'synchronized', b: 'synchronized' });
    await pair.settle();

    const expected = merged(pair.specs, pair.seeded.a, pair.seeded.b, preferB);
    wa.replay(expected);
    wb.replay(expected);
    // the loser's later write stands (the exchange leaves that row alone) and
    // streams across; the winner's later write streams across after its row
    expected.get(items)!.set('[2001]', { ...pair.seeded.a.get(items)!.get('[2001]')!, v: 'changed on A during the merge' });
    expected.get(items)!.set('[2002]', { ...pair.seeded.b.get(items)!.get('[2002]')!, v: 'changed on B during the merge' });
    const now = await pair.read();
    expect(differences(now.a, expected)).toEqual({});
    expect(differences(now.b, expected)).toEqual({});
    const hashes = await pair.hashes();
    expect(hashes.b).toEqual(hashes.a);
    expect(runTables(status)[items].rows_changed_during).toBe(1);
    // every key either writer committed is on both nodes
    const onA = now.a.get(items)!;
    const onB = now.b.get(items)!;
    const written = [...wa.keys(), ...wb.keys()];
    expect(written.length).toBeGreaterThan(150);
    expect(written.filter((k) => !onA.has(k) || !onB.has(k))).toEqual([]);

    // its progress, as the live bar reads it: a merge's phases in order, percent moving
    const progress = recorder.take().map((n) => n.payload).filter((p) => p.kind === 'merge' && p.merge_id === status.merge_id);
    const phases = progress.map((p) => p.phase).filter((p, i, all) => p && p !== all[i - 1]);
    expect(phases).toEqual(expect.arrayContaining(['comparing', 'exchanging', 'catching_up', 'verifying']));
    expect(phases.indexOf('comparing')).toBeLessThan(phases.indexOf('exchanging'));
    expect(phases.indexOf('exchanging')).toBeLessThan(phases.indexOf('verifying'));
    expect(progress.some((p) => Number(p.percent) > 0 && Number(p.percent) < 100)).toBe(true);
  });

  it('a cancel before the exchange changes nothing: both uninitialized, no replication objects, rows as they were', async () => {
    const pair = await pairs.create({ sizes: { shared: 500, conflicts: 200, onlyA: 50, onlyB: 50 } });
    const agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'exchanged:60000' });
    const before = await pair.snapshot();
    const started = await pair.startMerge({ strategy: 'prefer-a' });
    await pausedAt(agent);
    // the merge points are there while it waits
    const during = await pair.replication();
    expect({ a: during.a.slots, b: during.b.slots }).toEqual({ a: [pair.nameAB], b: [pair.nameBA] });
    const [{ r: cancel }] = await query(pair.a.url, 'SELECT steep_repl.cancel_merge($1) AS r', [pair.a.id]);
    expect(cancel).toMatchObject({ merge_id: started.merge_id, cancelled: false });
    const t0 = Date.now();
    const status = await pair.waitEnd(started.merge_id, 30000);
    expect(Date.now() - t0).toBeLessThan(15000);
    expect(status.state).toBe('cancelled');
    expect(await pair.snapshot()).toEqual(before);
    const events = await pair.events();
    expect(events.a.filter((e) => e.event === 'merge.cancelled').map((e) => e.details.exchanged)).toEqual([false]);
    expect(events.b.map((e) => e.event)).toEqual(['merge.node_started', 'merge.node_finished']);
    expect(events.b[1].details).toMatchObject({ outcome: 'cancelled' });
  });

  it('a cancel (from node B) after the exchange: both uninitialized, no replication objects, the exchanged rows stay', async () => {
    const pair = await pairs.create({ sizes: { shared: 500, conflicts: 200, onlyA: 50, onlyB: 50 } });
    const agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'subscribed:60000' });
    const started = await pair.startMerge({ strategy: 'prefer-a' });
    await pausedAt(agent);
    expect((await pair.status(started.merge_id)).step).toBe('exchanged');
    const progress = await pair.progress();
    expect({ a: progress.a.merge.step, b: progress.b.merge.step }).toEqual({ a: 'exchanged', b: 'exchanged' });
    const [{ r: cancel }] = await query(pair.b.url, 'SELECT steep_repl.cancel_merge($1) AS r', [pair.b.id]);
    expect(cancel).toMatchObject({ cancel_requested: true, coordinator: pair.a.id });
    const t0 = Date.now();
    const status = await pair.waitEnd(started.merge_id, 30000);
    expect(Date.now() - t0).toBeLessThan(15000);
    expect(status.state).toBe('cancelled');
    expect(await pair.states()).toEqual({ a: 'uninitialized', b: 'uninitialized' });
    expect(await pair.progress()).toEqual({ a: undefined, b: undefined });
    expect(await pair.replication()).toEqual({ a: none, b: none });
    const expected = merged(pair.specs, pair.seeded.a, pair.seeded.b, preferA);
    const now = await pair.read();
    expect(differences(now.a, expected)).toEqual({});
    expect(differences(now.b, expected)).toEqual({});
    const events = await pair.events();
    expect(events.a.filter((e) => e.event === 'merge.cancelled').map((e) => e.details.exchanged)).toEqual([true]);
  });

  it('a key B writes during the merge that A would give it: nothing exchanged, recorded as concurrent; merged again by the strategy', async () => {
    const pair = await pairs.create({ sizes: { shared: 500, conflicts: 200, onlyA: 50, onlyB: 50 } });
    const items = pair.labels[0];
    const agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'exchanged:5000' });
    const started = await pair.startMerge({ strategy: 'prefer-a' });
    await pausedAt(agent);
    // 10001 is only on A at the merge point
    await query(pair.b.url, `INSERT INTO ${items} (id, v, n) VALUES (10001, 'written on B during the merge', 1)`);
    const b = cloneTables(pair.seeded.b);
    b.get(items)!.set('[10001]', { id: 10001, v: 'written on B during the merge', n: 1, updated_at: null });
    const failed = await pair.waitEnd(started.merge_id, 60000);
    expect({ state: failed.state, kind: failed.failure_kind }).toEqual({ state: 'failed', kind: 'concurrent' });
    expect(failed.error).toMatch(/^1 rows? of .*Items Ä.* written on node .* during the merge/);
    expect(failed.error).toContain('nothing was exchanged');
    const recorded = await query(pair.a.url, 'SELECT key, kind, row_a ->> \'v\' AS a, row_b ->> \'v\' AS b FROM steep_repl.merge_conflicts WHERE merge_id = $1', [
      started.merge_id,
    ]);
    expect(recorded).toEqual([{ key: { id: 10001 }, kind: 'concurrent', a: 'only a 10001', b: 'written on B during the merge' }]);
    // nothing exchanged, nothing left; both failed
    const now = await pair.read();
    expect(differences(now.a, pair.seeded.a)).toEqual({});
    expect(differences(now.b, b)).toEqual({});
    expect(await pair.replication()).toEqual({ a: none, b: none });
    expect(await pair.states()).toEqual({ a: 'failed', b: 'failed' });

    // run again: the key is a conflict now, A's row wins
    await agent.stop();
    await pair.startAgent();
    const again = await pair.startMerge({ strategy: 'prefer-a' });
    const status = await pair.waitEnd(again.merge_id, 90000);
    expect({ state: status.state, error: status.error }).toEqual({ state: 'merged', error: null });
    const expected = merged(pair.specs, pair.seeded.a, b, preferA);
    const after = await pair.read();
    expect(differences(after.a, expected)).toEqual({});
    expect(differences(after.b, expected)).toEqual({});
    expect(await pair.states()).toEqual({ a: 'synchronized', b: 'synchronized' });
  });

  it('the same key inserted on both nodes after the exchange: the apply workers fail, the merge says so within seconds (kind concurrent); merged again by the strategy', async () => {
    const pair = await pairs.create({ sizes: { shared: 300, conflicts: 100, onlyA: 30, onlyB: 30 } });
    const items = pair.labels[0];
    const agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'subscribed:5000' });
    const started = await pair.startMerge({ strategy: 'prefer-b', timeout: 3600 });
    await pausedAt(agent);
    // exchanged, not yet subscribed: both inserts wait in the slots for the other node
    await query(pair.a.url, `INSERT INTO ${items} (id, v, n) VALUES (3000002, 'inserted on A', 1)`);
    await query(pair.b.url, `INSERT INTO ${items} (id, v, n) VALUES (3000002, 'inserted on B', 2)`);
    const t0 = Date.now();
    const failed = await pair.waitEnd(started.merge_id, 90000);
    expect({ state: failed.state, kind: failed.failure_kind }).toEqual({ state: 'failed', kind: 'concurrent' });
    expect(failed.error).toMatch(/replication fails to apply on node .*: rows were written on both nodes after the merge points/);
    expect(failed.hint).toContain('run the merge again');
    // far from the hour's timeout, and no new attempt of the job
    expect(Date.now() - t0).toBeLessThan(60000);
    expect(agent.lines.filter((l) => l.event === 'merge.job_failed').map((l) => l.retrying)).toEqual([false]);
    expect(await pair.states()).toEqual({ a: 'failed', b: 'failed' });
    const kept = await pair.replication();
    expect([kept.a.subscriptions.length, kept.b.subscriptions.length]).toEqual([1, 1]);

    // a new merge from new merge points: the key is a conflict, B's row wins
    const again = await pair.startMerge({ strategy: 'prefer-b' });
    const status = await pair.waitEnd(again.merge_id, 90000);
    expect({ state: status.state, error: status.error }).toEqual({ state: 'merged', error: null });
    for (const url of [pair.a.url, pair.b.url]) {
      expect(await query(url, `SELECT v, n::int AS n FROM ${items} WHERE id = 3000002`)).toEqual([{ v: 'inserted on B', n: 2 }]);
    }
    const now = await pair.read();
    expect(differences(now.a, now.b)).toEqual({});
    expect(await pair.states()).toEqual({ a: 'synchronized', b: 'synchronized' });
  });

  it('--quiesce with a write since the merge point: failed, kind quiesce, nothing exchanged', async () => {
    const pair = await pairs.create({ sizes: { shared: 500, conflicts: 200, onlyA: 50, onlyB: 50 } });
    const items = pair.labels[0];
    const agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'exchanged:4000' });
    const started = await pair.startMerge({ strategy: 'prefer-a', quiesce: true });
    await pausedAt(agent);
    await query(pair.a.url, `INSERT INTO ${items} (id, v) VALUES (3000001, 'a write during a quiesced merge')`);
    const a = cloneTables(pair.seeded.a);
    a.get(items)!.set('[3000001]', { id: 3000001, v: 'a write during a quiesced merge', n: null, updated_at: null });
    const failed = await pair.waitEnd(started.merge_id, 60000);
    expect({ state: failed.state, kind: failed.failure_kind }).toEqual({ state: 'failed', kind: 'quiesce' });
    expect(failed.error).toMatch(/written on node .* during the merge/);
    const now = await pair.read();
    expect(differences(now.a, a)).toEqual({});
    expect(differences(now.b, pair.seeded.b)).toEqual({});
    expect(await pair.replication()).toEqual({ a: none, b: none });
    expect(await pair.states()).toEqual({ a: 'failed', b: 'failed' });
  });
});
