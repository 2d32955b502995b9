// A merge meets faults on real servers: node A's agent (the one running
// the job) is SIGKILLed while the nodes are compared, again right after
// its exchange was written but not committed, again right after the
// exchange committed (before subscribing) and again once subscribed
// (before the catch-up wait), while writers keep writing on both nodes.
// Each new agent resumes: before the exchange it starts over from new
// merge points, after it it goes on from the slots. The merge ends merged,
// both nodes identical, holding the strategy's rows with every write, each
// event once, one set of replication objects.
import { query } from './support/clusters';
import { differences, itemsWriter, merged, pairsOf, preferA, stopWriters } from './support/merge-pair';
import { AgentProcess } from './support/processes';
import { waitUntil } from './support/wait';

jest.setTimeout(180000);

describe('merge faults', () => {
  const pairs = pairsOf('merge_faults');
  afterEach(() => pairs.dropAll());

  const pausedAt = (agent: AgentProcess) => agent.waitFor((l) => l.event === 'merge.paused', 60000);

  it('the agent SIGKILLed while comparing, before the exchange commits, after it and once subscribed, writers on both: merged, identical, every write, events once', async () => {
    const pair = await pairs.create({ sizes: { shared: 1500, conflicts: 500, onlyA: 200, onlyB: 200 } });
    const wa = itemsWriter(pair, 'a', 1_000_000);
    const wb = itemsWriter(pair, 'b', 2_000_000);
    const moreWrites = async (n: number) => {
      const [ta, tb] = [wa.writer.counts.transactions, wb.writer.counts.transactions];
      await waitUntil(`${n} more writes on both`, () => wa.writer.counts.transactions > ta + n && wb.writer.counts.transactions > tb + n, 20000);
    };
    let status: any;
    try {
      await moreWrites(20);
      // 1: killed while comparing (the merge points made, nothing exchanged)
      let agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'compared:60000' });
      const started = await pair.startMerge({ strategy: 'prefer-a' });
      await pausedAt(agent);
      await agent.stop('SIGKILL');
      const first = await pair.status(started.merge_id);
      expect({ state: first.state, phase: first.phase }).toEqual({ state: 'running', phase: 'comparing' });
      expect(['prepared', 'comparing']).toContain(first.step);
      expect(await pair.states()).toEqual({ a: 'copying', b: 'copying' });
      const firstProgress = await pair.progress();
      expect([firstProgress.a.merge.step, firstProgress.b.merge.step]).not.toContain('exchanged');
      await moreWrites(30);

      // 2: killed with the exchange written on both nodes but not committed: none of it stays
      agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'committing:60000' });
      await pausedAt(agent);
      // on each node an agent session holds a transaction that wrote (has an xid), open
      const writing = async (url: string) =>
        (
          await query(
            url,
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'steep-repl%' AND state LIKE 'idle in transaction%' AND backend_xid IS NOT NULL",
          )
        )[0].n;
      expect({ a: await writing(pair.a.url), b: await writing(pair.b.url) }).toEqual({ a: 1, b: 1 });
      await agent.stop('SIGKILL');
      const uncommitted = await pair.progress();
      expect([uncommitted.a.merge.step, uncommitted.b.merge.step]).not.toContain('exchanged');
      const items = pair.labels[0];
      const crossed = async () => ({
        onlyAonB: (await query(pair.b.url, `SELECT count(*)::int AS n FROM ${items} WHERE id BETWEEN 10001 AND 19999`))[0].n,
        onlyBonA: (await query(pair.a.url, `SELECT count(*)::int AS n FROM ${items} WHERE id BETWEEN 20001 AND 29999`))[0].n,
      });
      // the killed agent's sessions end with it; their transactions roll back
      const openAgentTransactions = async (url: string) =>
        (
          await query(
            url,
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'steep-repl%' AND state LIKE 'idle in transaction%'",
          )
        )[0].n;
      await waitUntil('the killed exchange to roll back', async () => (await openAgentTransactions(pair.a.url)) + (await openAgentTransactions(pair.b.url)) === 0, 10000);
      expect(await crossed()).toEqual({ onlyAonB: 0, onlyBonA: 0 });
      await moreWrites(30);

      // 3: a new agent starts over from new merge points, exchanges, and is killed before subscribing
      agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'subscribed:60000' });
      await pausedAt(agent);
      await agent.stop('SIGKILL');
      expect((await pair.status(started.merge_id)).step).toBe('exchanged');
      const second = await pair.progress();
      expect({ a: second.a.merge.step, b: second.b.merge.step }).toEqual({ a: 'exchanged', b: 'exchanged' });
      const objects = await pair.replication();
      expect({ a: objects.a.slots, b: objects.b.slots, subs: [...objects.a.subscriptions, ...objects.b.subscriptions] }).toEqual({
        a: [pair.nameAB],
        b: [pair.nameBA],
        subs: [],
      });
      await moreWrites(30);

      // 4: goes on from the slots, subscribes, is killed before the catch-up wait
      agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'caught_up:60000' });
      await pausedAt(agent);
      await agent.stop('SIGKILL');
      expect((await pair.status(started.merge_id)).step).toBe('subscribed');
      expect(await pair.states()).toEqual({ a: 'catching_up', b: 'catching_up' });
      await moreWrites(30);

      // 5: finishes
      agent = await pair.startAgent();
      status = await pair.waitEnd(started.merge_id, 120000);
      await moreWrites(20);
    } finally {
      await stopWriters([wa, wb]);
    }
    expect({ state: status.state, error: status.error }).toEqual({ state: 'merged', error: null });
    expect(await pair.states()).toEqual({ a: 'synchronized', b: 'synchronized' });
    await pair.settle();
    const expected = merged(pair.specs, pair.seeded.a, pair.seeded.b, preferA);
    wa.replay(expected);
    wb.replay(expected);
    const now = await pair.read();
    expect(differences(now.a, expected)).toEqual({});
    expect(differences(now.b, expected)).toEqual({});
    const hashes = await pair.hashes();
    expect(hashes.b).toEqual(hashes.a);
    expect(wa.keys().length + wb.keys().length).toBeGreaterThan(200);
    expect(await pair.replication()).toEqual(pair.merging());
    // whatever the kills, each event once
    const events = await pair.events();
    expect(events.a.map((e) => e.event)).toEqual(['merge.started', 'merge.node_started', 'merge.node_finished', 'merge.completed']);
    expect(events.b.map((e) => e.event)).toEqual(['merge.node_started', 'merge.node_finished']);
  });

  it('a cancel asked while the agent is dead, after the exchange: the next agent removes the replication objects on both nodes; both uninitialized, the exchanged rows stay', async () => {
    const pair = await pairs.create({ sizes: { shared: 300, conflicts: 100, onlyA: 30, onlyB: 30 } });
    let agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'caught_up:60000' });
    const started = await pair.startMerge({ strategy: 'prefer-a' });
    await pausedAt(agent);
    await agent.stop('SIGKILL');
    expect((await pair.status(started.merge_id)).step).toBe('subscribed');
    const [{ r: asked }] = await query(pair.a.url, 'SELECT steep_repl.cancel_merge($1) AS r', [pair.a.id]);
    expect(asked).toMatchObject({ merge_id: started.merge_id, cancel_requested: true });

    agent = await pair.startAgent();
    const status = await pair.waitEnd(started.merge_id, 60000);
    expect(status.state).toBe('cancelled');
    expect(await pair.states()).toEqual({ a: 'uninitialized', b: 'uninitialized' });
    const none = { slots: [], publications: [], subscriptions: [] };
    expect(await pair.replication()).toEqual({ a: none, b: none });
    const expected = merged(pair.specs, pair.seeded.a, pair.seeded.b, preferA);
    const now = await pair.read();
    expect(differences(now.a, expected)).toEqual({});
    expect(differences(now.b, expected)).toEqual({});
    const events = await pair.events();
    expect(events.a.filter((e) => e.event === 'merge.cancelled').map((e) => e.details.exchanged)).toEqual([true]);
    expect(events.b.filter((e) => e.event === 'merge.node_finished').map((e) => e.details.outcome)).toEqual(['cancelled']);
  });
});
