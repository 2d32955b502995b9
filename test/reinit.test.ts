// node reinit --tables and --schema on real servers: a pair A → B and a
// peer C subscribed to B with origin = none. B diverges by hand on a table;
// that table alone is emptied and copied again while a writer keeps
// writing another table on A, whose rows reach B during the reinit; the
// final verify leaves B synchronized, equal to A; nothing of the reinit
// reaches C (no truncate, no copied row). Then the same for a schema with
// an odd name, and the refusals, which change nothing.
import { escapeIdentifier } from 'pg';
import { clusterA, clusterB, query } from './support/clusters';
import { followInit } from './support/init-follower';
import {
  createReinitNodes,
  divergeSql,
  events,
  hashes,
  oddSchema,
  oddTables,
  peerApplyErrors,
  recopiedEvents,
  reinitOf,
  ReinitNodes,
  settle,
  waitState,
} from './support/reinit-nodes';
import { waitUntil } from './support/wait';
import { startWriter } from './support/writer';

jest.setTimeout(90000);

describe('reinit of tables and schemas', () => {
  let nodes: ReinitNodes;
  const startReinit = (scope: unknown, options: unknown = {}) =>
    query(nodes.b.url, 'SELECT steep_repl.start_reinit($1, $2, $3) AS r', [nodes.b.id, scope, options]).then((r) => r[0].r);
  // rows written to t2 on A in small transactions, from id 1,000,000 on (2,000,000 the next time, ...)
  let writers = 0;
  const t2Writer = () => {
    const base = ++writers * 1_000_000;
    return startWriter(nodes.a.url, (n) => [{ text: 'INSERT INTO public.t2 VALUES ($1, $2)', values: [base + n, `w${n}`] }]);
  };

  beforeAll(async () => {
    nodes = await createReinitNodes({ tag: 'reinit', clusterA: clusterA(), clusterB: clusterB(), slowMsPerRow: 2 });
  });
  afterAll(async () => {
    await nodes?.drop();
  });

  // The reinit of `scope` while t2 is written on A: its rows arrive on B
  // while the re-copied tables are still out of the subscription or copying.
  async function reinitUnderWrites(scope: unknown, recopied: string[]): Promise<{ c: Record<string, string> }> {
    await settle(nodes);
    const cBefore = await hashes(nodes.c.url);
    const following = await followInit(nodes.b.url, nodes.b.id);
    const writer = t2Writer();
    try {
      await waitUntil('writes on A', () => writer.counts.transactions > 20);
      const started = await startReinit(scope);
      expect(started).toMatchObject({ node_id: nodes.b.id, source_node_id: nodes.a.id, state: 'reinitializing', tables: recopied });

      // once the tables left the publication, t2 keeps arriving on B
      await waitUntil('the tables out of the publication', async () => ['emptied', 'added'].includes((await reinitOf(nodes.b)).reinit?.step), 30000, 50);
      const [{ max }] = await query(nodes.a.url, 'SELECT max(id)::int AS max FROM public.t2');
      await waitUntil('a row written on A mid-reinit to reach B', async () => (await query(nodes.b.url, 'SELECT 1 FROM public.t2 WHERE id = $1', [max])).length > 0, 20000, 50);
      const during = await reinitOf(nodes.b);
      expect(during.state).toBe('reinitializing');
      expect(during.reinit.step).not.toBe('copied');
      expect(during.reinit.step).not.toBe('verifying');
    } finally {
      await writer.stop();
    }
    expect(await waitState(nodes.b, ['synchronized', 'diverged'])).toBe('synchronized');
    await following.close();
    // the live bar: the copy's progress announced as an init's, then the verify phase
    const copying = following.progress.filter((p) => p.payload.phase === 'copying').map((p) => Number(p.payload.overall_percent));
    expect(copying.some((p) => p > 0 && p < 100)).toBe(true);
    expect(following.progress.map((p) => p.payload.phase)).toContain('verifying');
    await settle(nodes);
    expect(await hashes(nodes.b.url)).toEqual(await hashes(nodes.a.url));
    // C: nothing of the reinit, and its apply never failed
    expect(await hashes(nodes.c.url)).toEqual(cBefore);
    expect(await peerApplyErrors(nodes)).toBe(0);
    return { c: cBefore };
  }

  it('--tables t1: only t1 re-copied while t2 keeps replicating; verified, synchronized; C untouched', async () => {
    await query(nodes.b.url, divergeSql('public.t1'));
    await settle(nodes);
    // C received B's own changes (the divergence): its link to B works
    expect((await query(nodes.c.url, 'SELECT v FROM public.t1 WHERE id = 100001'))[0]).toEqual({ v: 'only on B' });
    const verify = await query(nodes.b.url, 'SELECT steep_repl.start_verify($1) AS v', [nodes.b.id]);
    expect(verify[0].v.verify_id).toBeGreaterThan(0);
    expect(await waitState(nodes.b, ['diverged'])).toBe('diverged');

    await reinitUnderWrites({ tables: ['t1'] }, ['public.t1']);

    const status = await reinitOf(nodes.b);
    expect(status.reinit).toMatchObject({ scope: 'tables', previous_state: 'diverged', outcome: 'equal', changed: true, state: 'synchronized' });
    expect(await query(nodes.b.url, 'SELECT * FROM steep_repl.node_divergence')).toEqual([]);
    const [run] = await query(nodes.b.url, "SELECT state, tables_total FROM steep_repl.verify_runs WHERE reason = 'reinit' ORDER BY verify_id DESC LIMIT 1");
    expect(run).toEqual({ state: 'equal', tables_total: 1 });
    expect((await events(nodes.b)).map((e) => e.event)).toEqual(recopiedEvents);
    const progress = await query(nodes.b.url, 'SELECT schema_name, table_name, state, percent::float8 AS percent FROM steep_repl.init_table_progress');
    expect(progress).toEqual([{ schema_name: 'public', table_name: 't1', state: 'done', percent: 100 }]);
    // the pair's publication has every table again
    const published = await query(nodes.a.url, 'SELECT count(*)::int AS n FROM pg_publication_tables WHERE pubname = $1', [nodes.pairName]);
    expect(published[0].n).toBe(6);

    // and C still receives what B itself writes
    await query(nodes.b.url, "SET session_replication_role = replica; UPDATE public.t1 SET v = 'after' WHERE id = 1");
    await waitUntil('C to receive B\'s own change', async () => (await query(nodes.c.url, 'SELECT v FROM public.t1 WHERE id = 1'))[0].v === 'after');
    await query(nodes.b.url, "SET session_replication_role = replica; UPDATE public.t1 SET v = 'v1' WHERE id = 1");
    await settle(nodes);
  });

  it('--schema with an odd name: both of its tables re-copied, the others untouched, synchronized; C untouched', async () => {
    await query(nodes.b.url, divergeSql(oddTables[0]));
    const t1Before = (await hashes(nodes.b.url, ['public.t1']))['public.t1'];
    await reinitUnderWrites({ schema: oddSchema }, oddTables);
    expect((await reinitOf(nodes.b)).reinit).toMatchObject({ scope: 'schema', schema: oddSchema, previous_state: 'synchronized', outcome: 'equal' });
    // t1 was not touched by this reinit
    expect((await hashes(nodes.b.url, ['public.t1']))['public.t1']).toBe(t1Before);
    const [started] = (await events(nodes.b)).filter((e) => e.event === 'reinit.started').slice(-1);
    expect(started.details).toMatchObject({ scope: 'schema', schema: oddSchema, tables: oddTables });
  });

  it('tables re-copied that still differ (a trigger on B changes a row as it arrives): the verify finds it, B diverged', async () => {
    await query(
      nodes.b.url,
      `CREATE FUNCTION public.mangle() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.id = 3 THEN NEW.v := 'mangled'; END IF; RETURN NEW; END $$;
       CREATE TRIGGER mangle BEFORE INSERT ON public.parent FOR EACH ROW EXECUTE FUNCTION public.mangle();
       ALTER TABLE public.parent ENABLE ALWAYS TRIGGER mangle;`,
    );
    try {
      // a table referenced by another goes with it
      const started = await startReinit({ tables: ['public.child', 'parent'] });
      expect(started.tables).toEqual(['public.child', 'public.parent']);
      expect(await waitState(nodes.b, ['synchronized', 'diverged'])).toBe('diverged');
    } finally {
      await query(nodes.b.url, 'DROP TRIGGER mangle ON public.parent; DROP FUNCTION public.mangle()');
    }
    const status = await reinitOf(nodes.b);
    expect(status.reinit).toMatchObject({ outcome: 'differs', state: 'diverged', previous_state: 'synchronized' });
    const divergence = await query(nodes.b.url, 'SELECT schema_name, table_name, rows_different::int, verify_id::int FROM steep_repl.node_divergence');
    expect(divergence).toEqual([{ schema_name: 'public', table_name: 'parent', rows_different: 1, verify_id: status.reinit.verify_id }]);
    const [completed] = (await events(nodes.b)).slice(-1);
    expect(completed).toMatchObject({ event: 'reinit.completed', details: { outcome: 'differs', state: 'diverged', verified: true } });
    // set right again for the tests after: the row as A has it, and a verify that finds it equal
    await query(nodes.b.url, "SET session_replication_role = replica; UPDATE public.parent SET v = 'p3' WHERE id = 3");
    await query(nodes.b.url, "SELECT steep_repl.start_verify($1, NULL, '{\"tables\": [\"public.parent\"]}')", [nodes.b.id]);
    expect(await waitState(nodes.b, ['synchronized'])).toBe('synchronized');
  });

  it('refusals: a foreign key into a kept table, unknown tables and schemas, wrong --from, wrong node, wrong state — nothing changed', async () => {
    const snapshot = async () => ({
      node: await reinitOf(nodes.b),
      audit: (await query(nodes.b.url, 'SELECT count(*)::int AS n FROM steep_repl.audit_log'))[0].n,
      jobs: (await query(nodes.b.url, 'SELECT count(*)::int AS n FROM graphile_worker._private_jobs'))[0].n,
      published: (await query(nodes.a.url, 'SELECT count(*)::int AS n FROM pg_publication_tables WHERE pubname = $1', [nodes.pairName]))[0].n,
    });
    const before = await snapshot();
    const refused = (scope: unknown, options: unknown = {}) => startReinit(scope, options).then(() => undefined, (err) => err);

    const fk = await refused({ tables: ['public.parent'] });
    expect(fk).toMatchObject({ code: 'SR004' });
    expect(fk.message).toContain('foreign key "child → parent" of public.child references public.parent');
    expect(fk.hint).toContain('add public.child to the reinit');
    // named together they are fine: emptied in one TRUNCATE
    await query(nodes.b.url, "SELECT steep_repl.reinit_foreign_keys($1, ARRAY['public.parent'::regclass, 'public.child'::regclass]::oid[])", [nodes.b.id]);

    const unknown = await refused({ tables: ['public.t1', 'public.nope'] });
    expect(unknown).toMatchObject({ code: 'SR004' });
    expect(unknown.message).toMatch(/public\.nope/);
    expect(await refused({ schema: 'no such schema' })).toMatchObject({ code: 'SR004' });
    expect(await refused({ tables: [] })).toMatchObject({ code: 'SR004' });
    expect(await refused({ tables: ['t1'], schema: 'public' })).toMatchObject({ code: 'SR004' });
    expect(await refused({ full: false })).toMatchObject({ code: 'SR004' });
    expect(await refused({ tables: ['t1'] }, { colour: 'red' })).toMatchObject({ code: 'SR004' });

    const from = await refused({ tables: ['t1'] }, { from: 'Somebody else' });
    expect(from).toMatchObject({ code: 'SR004' });
    expect(from.message).toBe(`node ${escapeIdentifier(nodes.b.id)} copies from node ${escapeIdentifier(nodes.a.id)}, not from "Somebody else"`);
    expect((await refused({ tables: ['t1'] }, { from: nodes.b.id })).message).toMatch(/cannot be reinitialized from itself/);

    // on another database than the node's
    await expect(query(nodes.a.url, 'SELECT steep_repl.start_reinit($1, $2)', [nodes.b.id, { tables: ['t1'] }])).rejects.toMatchObject({ code: 'SR004' });
    // the source itself: not synchronized, and a copy of nobody
    const source = await query(nodes.a.url, 'SELECT steep_repl.start_reinit($1, $2)', [nodes.a.id, { tables: ['t1'] }]).catch((e) => e);
    expect(source).toMatchObject({ code: 'SR003' });
    expect(source.message).toMatch(/is uninitialized: only a synchronized or diverged node can be reinitialized/);

    // --full of a node initialized by hand (manual) is refused
    const manual = await query(
      nodes.b.url,
      `BEGIN; UPDATE steep_repl.init_progress SET method = 'manual'; SELECT steep_repl.start_reinit('${nodes.b.id.replace(/'/g, "''")}', '{"full": true}');`,
    ).catch((e) => e);
    expect(manual).toMatchObject({ code: 'SR004' });
    expect(manual.message).toMatch(/initialized with method manual/);

    expect(await snapshot()).toEqual(before);

    // wrong state: a second reinit while one is queued (the agent stopped, so it stays queued)
    await nodes.agent.stop('SIGTERM');
    try {
      await startReinit({ tables: ['t1'] });
      const second = await refused({ tables: [escapeIdentifier('public') + '.t2'] });
      expect(second).toMatchObject({ code: 'SR006' });
      const start = await query(nodes.b.url, 'SELECT steep_repl.start_init($1, $2)', [nodes.b.id, nodes.a.id]).catch((e) => e);
      expect(start).toMatchObject({ code: 'SR006' });
      // queued, not started: the cancel ends it at once, back to synchronized
      const [{ r: cancelled }] = await query(nodes.b.url, 'SELECT steep_repl.cancel_init($1) AS r', [nodes.b.id]);
      expect(cancelled).toMatchObject({ cancelled: true, changed: false, state: 'synchronized' });
      const ended = await reinitOf(nodes.b);
      expect(ended.reinit).toMatchObject({ outcome: 'unchanged', reason: 'cancelled', step: 'queued', changed: false });
      expect(ended.cancel_requested_at).not.toBeNull();

      // the job checks again before it changes anything: a key into t2 made
      // while the reinit waited fails it, and the node is as it was
      await startReinit({ tables: ['public.t2'] });
      await query(nodes.b.url, 'ALTER TABLE public.child ADD CONSTRAINT "late key" FOREIGN KEY (id) REFERENCES public.t2 (id)');
    } finally {
      await nodes.restartAgent();
    }
    try {
      expect(await waitState(nodes.b, ['synchronized'])).toBe('synchronized');
      const [failed] = (await events(nodes.b)).slice(-1);
      expect(failed).toMatchObject({ event: 'reinit.failed', details: { changed: false, outcome: 'unchanged', state: 'synchronized' } });
      expect(failed.details.error).toContain('foreign key "late key" of public.child references public.t2');
      expect((await reinitOf(nodes.b)).reinit).toMatchObject({ outcome: 'unchanged', reason: 'failed', error: failed.details.error });
      expect(await snapshot().then((s) => s.published)).toBe(before.published);
    } finally {
      await query(nodes.b.url, 'ALTER TABLE public.child DROP CONSTRAINT "late key"');
    }
  });
});
