// node reinit --full on real servers: B (synchronized from A by a snapshot
// init) diverged by hand in two tables re-copies every table with its own
// method while a writer writes on A: the pair's subscription, slot and
// publication are made again, the node stays reinitializing with the
// method's phases and a live bar, and the verify at the end leaves it
// synchronized, equal to A. The peer C (subscribed to B, origin = none)
// receives nothing. A cancel of --full is an init's: B ends uninitialized,
// its tables emptied on B only.
import { clusterA, clusterB, query } from './support/clusters';
import { followInit } from './support/init-follower';
import { createReinitNodes, divergeSql, events, hashes, oddTables, peerApplyErrors, reinitOf, ReinitNodes, settle, tables, waitSlotCaughtUp, waitState } from './support/reinit-nodes';
import { waitUntil } from './support/wait';
import { startWriter } from './support/writer';

jest.setTimeout(90000);

describe('reinit --full', () => {
  let nodes: ReinitNodes;
  const subscriptionOid = async () =>
    (await query(nodes.b.url, 'SELECT oid::int8::text AS oid FROM pg_subscription WHERE subname = $1', [nodes.pairName]))[0]?.oid;
  const stateChanges = async (since: number) =>
    (await query(nodes.b.url, "SELECT to_state FROM steep_repl.audit_log WHERE node_id = $1 AND event = 'init.state_change' AND audit_id > $2 ORDER BY audit_id", [nodes.b.id, since])).map(
      (r) => r.to_state,
    );
  const lastAudit = async () => (await query(nodes.b.url, 'SELECT max(audit_id)::int AS id FROM steep_repl.audit_log'))[0].id;

  beforeAll(async () => {
    nodes = await createReinitNodes({ tag: 'reinit_full', clusterA: clusterA(), clusterB: clusterB(), slowMsPerRow: 1 });
  });
  afterAll(async () => {
    await nodes?.drop();
  });

  it('re-copies every table with the node\'s method under writes: verified, synchronized, equal to A; C untouched', async () => {
    await query(nodes.b.url, divergeSql('public.t1') + divergeSql(oddTables[0]));
    await settle(nodes);
    const cBefore = await hashes(nodes.c.url);
    const oidBefore = await subscriptionOid();
    const auditBefore = await lastAudit();
    const following = await followInit(nodes.b.url, nodes.b.id);
    const writer = startWriter(nodes.a.url, (n) => [
      { text: 'INSERT INTO public.t2 VALUES ($1, $2)', values: [1_000_000 + n, `w${n}`] },
      { text: 'UPDATE public.t1 SET n = n + 1 WHERE id = $1', values: [1 + (n % 1000)] },
    ]);
    try {
      await waitUntil('writes on A', () => writer.counts.transactions > 20);
      const [{ r: started }] = await query(nodes.b.url, "SELECT steep_repl.start_reinit($1, '{\"full\": true}') AS r", [nodes.b.id]);
      expect(started).toMatchObject({ scope: 'full', method: 'snapshot', state: 'reinitializing', previous_state: 'synchronized' });
      await waitUntil('the copy under way', async () => (await reinitOf(nodes.b)).phase === 'copying', 30000, 50);
      expect((await reinitOf(nodes.b)).reinit).toMatchObject({ scope: 'full', step: 'detached', changed: true });
      await waitUntil('more writes during the copy', () => writer.counts.transactions > 100);
    } finally {
      await writer.stop();
    }
    expect(await waitState(nodes.b, ['synchronized', 'diverged', 'failed', 'uninitialized'])).toBe('synchronized');
    await following.close();
    await settle(nodes);

    expect(await hashes(nodes.b.url)).toEqual(await hashes(nodes.a.url));
    expect(await hashes(nodes.c.url)).toEqual(cBefore);
    expect(await peerApplyErrors(nodes)).toBe(0);
    const [{ last_value: seq }] = await query(nodes.b.url, 'SELECT last_value::int FROM public.ticket_seq');
    expect(seq).toBe(777);

    // a new subscription of the pair; the node stayed reinitializing throughout
    expect(await subscriptionOid()).not.toBe(oidBefore);
    expect(await stateChanges(auditBefore)).toEqual(['reinitializing', 'synchronized']);
    const status = await reinitOf(nodes.b);
    expect(status.reinit).toMatchObject({ scope: 'full', outcome: 'equal', state: 'synchronized' });
    const [run] = await query(nodes.b.url, "SELECT state, tables_total FROM steep_repl.verify_runs WHERE reason = 'reinit' ORDER BY verify_id DESC LIMIT 1");
    expect(run).toEqual({ state: 'equal', tables_total: tables.length });
    const reinitEvents = (await events(nodes.b)).map((e) => e.event);
    expect(reinitEvents).toEqual(['reinit.started', 'reinit.completed']);
    const phases = new Set(following.progress.map((p) => p.payload.phase));
    for (const phase of ['preparing', 'schema_sync', 'copying', 'catching_up', 'finalizing', 'verifying', 'done']) expect(phases).toContain(phase);
    const copying = following.progress.filter((p) => p.payload.phase === 'copying').map((p) => Number(p.payload.overall_percent));
    expect(copying.some((p) => p > 0 && p < 100)).toBe(true);
    // what the plan emptied, it emptied under the origin
    expect(nodes.agent.lines.find((l) => l.event === 'init.tables_emptied')).toBeDefined();
  });

  it('a cancel of --full mid-copy is an init\'s: uninitialized, its rows emptied on B only; C keeps its rows', async () => {
    await settle(nodes);
    const cBefore = await hashes(nodes.c.url);
    await query(nodes.b.url, "SELECT steep_repl.start_reinit($1, '{\"full\": true}')", [nodes.b.id]);
    await waitUntil('the copy under way', async () => (await reinitOf(nodes.b)).phase === 'copying', 30000, 50);
    const [{ r }] = await query(nodes.b.url, 'SELECT steep_repl.cancel_init($1) AS r', [nodes.b.id]);
    expect(r).toMatchObject({ cancel_requested: true, changed: true });
    expect(await waitState(nodes.b, ['uninitialized', 'synchronized'])).toBe('uninitialized');
    expect(await query(nodes.b.url, 'SELECT count(*)::int AS n FROM public.t1')).toEqual([{ n: 0 }]);
    expect(await query(nodes.a.url, 'SELECT pubname FROM pg_publication')).toEqual([]);
    await waitSlotCaughtUp(nodes.b.url, nodes.peerSubscription);
    expect(await hashes(nodes.c.url)).toEqual(cBefore);
    expect(await peerApplyErrors(nodes)).toBe(0);
    expect((await events(nodes.b)).map((e) => e.event).slice(-2)).toEqual(['reinit.started', 'reinit.cancelled']);
  });
});
