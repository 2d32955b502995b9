// A reinit of tables meets faults on real servers: the target's agent
// SIGKILLed right after the tables left the publication and again in the
// middle of their copy, with writes on A all along — a new agent resumes
// from the recorded step and the catalogs, and B ends synchronized (by the
// final verify) with A's content; a cancel before the point of no return
// changes nothing (the node back in its previous state, its tables as they
// were, still published); a cancel after it lets the re-copy finish, skips
// the verify and leaves B synchronized with A's rows. The peer C (origin =
// none) receives nothing of any of it.
import { clusterA, clusterB, query } from './support/clusters';
import { createReinitNodes, divergeSql, events, hashes, peerApplyErrors, recopiedEvents, reinitOf, ReinitNodes, settle, waitState } from './support/reinit-nodes';
import { waitUntil } from './support/wait';
import { startWriter, Writer } from './support/writer';

jest.setTimeout(90000);

describe('reinit faults', () => {
  let nodes: ReinitNodes;
  let writers = 0;
  // t1 and t2 written on A: new rows and updates of seeded ones
  const writeOnA = (): Writer => {
    const base = ++writers * 1_000_000;
    return startWriter(nodes.a.url, (n) => [
      { text: 'INSERT INTO public.t1 (id, v) VALUES ($1, $2)', values: [base + n, `a${n}`] },
      { text: 'UPDATE public.t1 SET n = coalesce(n, 0) + 1 WHERE id = $1', values: [1 + (n % 1500)] },
      { text: 'INSERT INTO public.t2 VALUES ($1, $2)', values: [base + n, `w${n}`] },
    ]);
  };
  const startReinit = (scope: unknown) => query(nodes.b.url, 'SELECT steep_repl.start_reinit($1, $2) AS r', [nodes.b.id, scope]).then((r) => r[0].r);
  const cancel = () => query(nodes.b.url, 'SELECT steep_repl.cancel_init($1) AS r', [nodes.b.id]).then((r) => r[0].r);
  const published = async () => (await query(nodes.a.url, 'SELECT count(*)::int AS n FROM pg_publication_tables WHERE pubname = $1 AND tablename = $2', [nodes.pairName, 't1']))[0].n;
  const t1Copying = () =>
    waitUntil('t1 being copied', async () => {
      const [t] = await query(nodes.b.url, "SELECT state, rows_copied FROM steep_repl.init_table_progress WHERE table_name = 't1'");
      return t?.state === 'copying' && Number(t.rows_copied) > 0;
    }, 30000, 50);
  let divergences = 0;
  const diverge = async () => {
    await query(nodes.b.url, divergeSql('public.t1', 10 * divergences++));
    await query(nodes.b.url, 'SELECT steep_repl.start_verify($1)', [nodes.b.id]);
    await waitState(nodes.b, ['diverged']);
  };

  beforeAll(async () => {
    nodes = await createReinitNodes({ tag: 'reinit_faults', clusterA: clusterA(), clusterB: clusterB(), rows: 3000, slowMsPerRow: 2 });
  });
  afterAll(async () => {
    await nodes?.drop();
  });

  it('the agent SIGKILLed after the tables left the publication, and again mid-copy: a new agent resumes; synchronized, equal to A', async () => {
    await diverge();
    await settle(nodes);
    const cBefore = await hashes(nodes.c.url);
    const writer = writeOnA();
    try {
      await waitUntil('writes on A', () => writer.counts.transactions > 20);
      await startReinit({ tables: ['public.t1'] });
      // the agent's own line, written right after the drop, before the step is recorded
      await nodes.agent.waitFor((l) => l.event === 'reinit.tables_removed' && l.audit_id === undefined);
      await nodes.agent.stop('SIGKILL');
      expect(await published()).toBe(0);
      const killed = await reinitOf(nodes.b);
      expect(killed.state).toBe('reinitializing');
      expect(killed.reinit.changed).toBe(true);
      // A keeps writing t1 and t2 while no agent runs
      const at = writer.counts.transactions;
      await waitUntil('writes while the agent is down', () => writer.counts.transactions > at + 50);

      await nodes.restartAgent();
      await nodes.agent.waitFor((l) => l.event === 'reinit.job_started' && ['removing', 'removed'].includes(String(l.step)));
      await t1Copying();
      await nodes.agent.stop('SIGKILL');
      expect((await reinitOf(nodes.b)).reinit.step).toBe('added');
      await nodes.restartAgent();
      await nodes.agent.waitFor((l) => l.event === 'reinit.job_started' && l.step === 'added');
      await waitUntil('more writes', () => writer.counts.transactions > at + 150);
    } finally {
      await writer.stop();
    }
    expect(await waitState(nodes.b, ['synchronized', 'diverged'])).toBe('synchronized');
    await settle(nodes);
    expect(await hashes(nodes.b.url)).toEqual(await hashes(nodes.a.url));
    expect(await hashes(nodes.c.url)).toEqual(cBefore);
    expect(await peerApplyErrors(nodes)).toBe(0);
    expect((await reinitOf(nodes.b)).reinit).toMatchObject({ outcome: 'equal', previous_state: 'diverged', error: null });
    expect(await published()).toBe(1);
    // each step's event once, whatever the kills
    expect((await events(nodes.b)).map((e) => e.event)).toEqual(recopiedEvents);
  });

  it('a cancel before the point of no return changes nothing: the node diverged again, its table as it was and still published', async () => {
    await diverge();
    await settle(nodes);
    const before = { t1: await hashes(nodes.b.url, ['public.t1']), divergence: await query(nodes.b.url, 'SELECT * FROM steep_repl.node_divergence') };
    await nodes.agent.stop('SIGTERM');
    try {
      // queued, its job not started: cancelled at once
      await startReinit({ tables: ['t1'] });
      expect(await cancel()).toMatchObject({ cancelled: true, changed: false, state: 'diverged' });

      // its job waiting to run again (an attempt that failed): the job ends it
      await startReinit({ tables: ['t1'] });
      await query(nodes.b.url, "UPDATE graphile_worker._private_jobs SET attempts = 1, run_at = now() + interval '1 hour' WHERE key = $1", [`init:${nodes.b.id}`]);
      expect(await cancel()).toMatchObject({ cancelled: false, cancel_requested: true, changed: false, state: 'reinitializing' });
    } finally {
      await nodes.restartAgent();
    }
    expect(await waitState(nodes.b, ['diverged', 'synchronized'])).toBe('diverged');
    expect((await reinitOf(nodes.b)).reinit).toMatchObject({ outcome: 'unchanged', step: 'queued', changed: false });
    expect(await hashes(nodes.b.url, ['public.t1'])).toEqual(before.t1);
    expect(await query(nodes.b.url, 'SELECT * FROM steep_repl.node_divergence')).toEqual(before.divergence);
    expect(await published()).toBe(1);
    const cancelled = (await events(nodes.b)).filter((e) => e.event === 'reinit.cancelled').slice(-2);
    expect(cancelled.map((e) => e.details)).toEqual([
      expect.objectContaining({ changed: false, state: 'diverged', outcome: 'unchanged' }),
      expect.objectContaining({ changed: false, state: 'diverged', outcome: 'unchanged' }),
    ]);
  });

  it('a cancel after the point of no return: fully re-copied, not verified, synchronized with A\'s rows', async () => {
    const verifies = async () => (await query(nodes.b.url, "SELECT count(*)::int AS n FROM steep_repl.verify_runs WHERE reason = 'reinit'"))[0].n;
    const verifiesBefore = await verifies();
    await settle(nodes);
    const cBefore = await hashes(nodes.c.url);
    const writer = writeOnA();
    try {
      await startReinit({ tables: ['t1'] });
      await t1Copying();
      expect(await cancel()).toMatchObject({ cancel_requested: true, changed: true, state: 'reinitializing' });
      expect(await waitState(nodes.b, ['synchronized', 'diverged'])).toBe('synchronized');
    } finally {
      await writer.stop();
    }
    await settle(nodes);
    expect(await hashes(nodes.b.url)).toEqual(await hashes(nodes.a.url));
    expect(await hashes(nodes.c.url)).toEqual(cBefore);
    expect(await peerApplyErrors(nodes)).toBe(0);
    const status = await reinitOf(nodes.b);
    expect(status.reinit).toMatchObject({ outcome: 'recopied', step: 'copied', previous_state: 'diverged' });
    expect(status.cancel_requested_at).not.toBeNull();
    expect(await verifies()).toBe(verifiesBefore);
    // the divergence found before is about rows that are gone
    expect(await query(nodes.b.url, 'SELECT * FROM steep_repl.node_divergence')).toEqual([]);
    const [last] = (await events(nodes.b)).slice(-1);
    expect(last).toMatchObject({ event: 'reinit.cancelled', details: { changed: true, verified: false, outcome: 'recopied' } });
  });
});
