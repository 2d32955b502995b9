// A merge meets faults on real servers: node A's agent (the one running
// the job) is SIGKILLed while the nodes are compared, again right after
// the exchange committed (before subscribing) and again once subscribed
// (before the final verify), while writers keep writing on both nodes.
// Each new agent resumes: before the exchange it starts over from new
// merge points, after it it goes on from the slots. The merge ends merged,
// both nodes identical, holding the strategy's rows with every write, each
// event once, one set of replication objects.
import { differences, itemsWriter, merged, pairsOf, preferA, stopWriters } from './support/merge-pair';
import { AgentProcess } from './support/processes';
import { waitUntil } from './support/wait';

jest.setTimeout(180000);

describe('merge faults', () => {
  const pairs = pairsOf('merge_faults');
  afterEach(() => pairs.dropAll());

  const pausedAt = (agent: AgentProcess) => agent.waitFor((l) => l.event === 'merge.paused', 60000);

  it('the agent SIGKILLed while comparing, after the exchange and once subscribed, writers on both: merged, identical, every write, events once', async () => {
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

      // 2: a new agent starts over from new merge points, exchanges, and is killed before subscribing
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

      // 3: goes on from the slots, subscribes, is killed before the catch-up wait
      agent = await pair.startAgent({ STEEP_REPL_MERGE_PAUSE_AT: 'caught_up:60000' });
      await pausedAt(agent);
      await agent.stop('SIGKILL');
      expect((await pair.status(started.merge_id)).step).toBe('subscribed');
      expect(await pair.states()).toEqual({ a: 'catching_up', b: 'catching_up' });
      await moreWrites(30);

      // 4: finishes
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
});
