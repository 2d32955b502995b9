// What an init refuses before it copies anything: schema differences
// (strict), tables without a key, target tables that already hold rows —
// and --force, which empties those rows on the target without that
// emptying reaching any peer.
import { clusterA, clusterB, createDatabase, dropDatabase, query } from './support/clusters';
import { contentHashes, createInitPair, InitPair, initStatus, leftovers, waitCaughtUp } from './support/init-pair';
import { waitUntil } from './support/wait';
import { AgentProcess, runCli, stopAllAgents } from './support/processes';

jest.setTimeout(120000);

describe('init refusals', () => {
  let pair: InitPair;
  let peer: { name: string; url: string } | undefined;

  beforeAll(async () => {
    // Node ids of its own: slot names derive from them and slots are per server,
    // shared with the other init test files running beside this one.
    pair = await createInitPair({
      tag: 'init_refuse',
      sourceCluster: clusterA(),
      targetCluster: clusterB(),
      sourceId: 'Refusing Ü src',
      targetId: 'refusing "tgt"',
      rows: 2000,
    });
  });
  afterAll(async () => {
    await stopAllAgents();
    if (peer) {
      await query(peer.url, 'ALTER SUBSCRIPTION to_peer DISABLE').catch(() => undefined);
      await query(peer.url, 'ALTER SUBSCRIPTION to_peer SET (slot_name = NONE)').catch(() => undefined);
      await query(peer.url, 'DROP SUBSCRIPTION IF EXISTS to_peer').catch(() => undefined);
      await dropDatabase(clusterA(), peer.name);
    }
    await query(clusterB().url(), "SELECT pg_drop_replication_slot('to_peer') FROM pg_replication_slots WHERE slot_name = 'to_peer'").catch(
      () => undefined,
    );
    await pair?.drop();
  });

  async function failWith(expectedCode: number, pattern: RegExp, extra: string[] = []): Promise<any> {
    const result = await runCli(['node', 'start', pair.target.id, '--from', pair.source.id, ...extra, '--db', pair.target.url]);
    expect(result.stderr).toMatch(pattern);
    expect(result.code).toBe(expectedCode);
    const status = await initStatus(pair.target);
    expect(status.state).toBe('failed');
    // Nothing was created on either side before the refusal.
    expect(await leftovers(pair)).toEqual({ subscriptions: [], slots: [], publications: [] });
    const cancel = await runCli(['node', 'cancel', pair.target.id, '--db', pair.target.url]);
    expect(cancel.code).toBe(0);
    expect((await initStatus(pair.target)).state).toBe('uninitialized');
    return status;
  }

  it('refuses schema differences (strict exit 3; manual asks, "no" exits 3), tables without a key, and target rows without --force', async () => {
    const agent = new AgentProcess(pair.target.url);
    await agent.waitForEvent('agent.started');

    await query(pair.target.url, 'ALTER TABLE public.docs DROP COLUMN body');
    const mismatch = await failWith(3, /differs from node/);
    expect(mismatch.progress.failure_kind).toBe('schema_mismatch');
    await query(pair.target.url, 'ALTER TABLE public.docs ADD COLUMN body text NOT NULL');

    // Manual mode shows the differences and asks; "no" changes nothing.
    await query(pair.target.url, "ALTER TABLE public.accounts ALTER COLUMN note SET DEFAULT 'differs'");
    const initEvents = "SELECT count(*)::int AS n FROM steep_repl.audit_log WHERE event LIKE 'init.%'";
    const auditBefore = await query(pair.target.url, initEvents);
    const declined = await runCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--schema-sync', 'manual', '--db', pair.target.url], {}, 'n\n');
    expect(declined.stderr).toMatch(/initialize with these differences\? \[y\/N\]/);
    expect(declined.stderr).toMatch(/public\.accounts/);
    expect(declined.code).toBe(3);
    expect(await initStatus(pair.target)).toMatchObject({ state: 'uninitialized', progress: null, job: null });
    expect(await query(pair.target.url, initEvents)).toEqual(auditBefore);
    await query(pair.target.url, 'ALTER TABLE public.accounts ALTER COLUMN note DROP DEFAULT');

    for (const url of [pair.source.url, pair.target.url]) await query(url, 'CREATE TABLE public."no key ☹" (v text)');
    const noKey = await failWith(1, /neither a primary key nor a replica identity.*public\."no key ☹"/);
    expect(noKey.progress.error).toMatch(/REPLICA IDENTITY FULL/);
    for (const url of [pair.source.url, pair.target.url]) await query(url, 'DROP TABLE public."no key ☹"');

    await query(pair.target.url, "INSERT INTO public.accounts VALUES (-1, 0, 'only on the target')");
    await query(pair.target.url, `INSERT INTO "Sales ünit"."Order ""Items"" é" ("select") VALUES ('only on the target')`);
    const withRows = await failWith(1, /2 table\(s\) on node .* already hold rows: "Sales ünit"\."Order ""Items"" é", public\.accounts/);
    expect(withRows.progress.error).toMatch(/--force/);
    await agent.stop();
  });

  it('fails instead of waiting forever when a table cannot be copied (manual mode let a missing column through)', async () => {
    const agent = new AgentProcess(pair.target.url, [], { STEEP_REPL_MAX_WORKER_ERRORS: '1' });
    await agent.waitForEvent('agent.started');
    const saved = await query(pair.target.url, 'SELECT id, balance::float8, note FROM public.accounts');
    await query(pair.target.url, 'DELETE FROM public.accounts; DELETE FROM "Sales ünit"."Order ""Items"" é"');
    await query(pair.target.url, 'ALTER TABLE public.docs DROP COLUMN body');
    const result = await runCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--schema-sync', 'manual', '--yes', '--db', pair.target.url]);
    expect(result.stderr).toMatch(/workers failed/);
    expect(result.code).toBe(1);
    const status = await initStatus(pair.target);
    expect(status.state).toBe('failed');
    expect(status.progress.error).toMatch(/workers failed \d+ times while copying; tables not yet copied: .*public\.docs/);
    expect(status.progress.error).toMatch(/server's log/);
    const cancel = await runCli(['node', 'cancel', pair.target.id, '--db', pair.target.url]);
    expect(cancel.code).toBe(0);
    expect(await leftovers(pair)).toEqual({ subscriptions: [], slots: [], publications: [] });
    await query(pair.target.url, 'ALTER TABLE public.docs ADD COLUMN body text NOT NULL');
    for (const row of saved) await query(pair.target.url, 'INSERT INTO public.accounts VALUES ($1, $2, $3)', [row.id, row.balance, row.note]);
    await query(pair.target.url, `INSERT INTO "Sales ünit"."Order ""Items"" é" ("select") VALUES ('only on the target')`);
    await agent.stop();
  });

  it('--force empties those tables on the target only: a peer subscribed to the target (origin = none) keeps its rows', async () => {
    // A peer of the target, subscribed with origin = none like every
    // steep-repl subscription, already holding the target's own row.
    peer = await createDatabase(clusterA(), 'init_refuse_peer');
    await query(peer.url, 'CREATE TABLE public.accounts (id int PRIMARY KEY, balance numeric(12,2) NOT NULL, note text)');
    await query(pair.target.url, 'CREATE PUBLICATION to_peer FOR TABLE public.accounts');
    await query(
      peer.url,
      `CREATE SUBSCRIPTION to_peer CONNECTION 'host=127.0.0.1 port=${clusterB().port} dbname=${pair.target.name} user=postgres'
       PUBLICATION to_peer WITH (origin = none)`,
    );
    await waitUntil('the peer to copy the target row', async () => (await query(peer!.url, 'SELECT count(*)::int AS n FROM public.accounts'))[0].n === 1);

    const agent = new AgentProcess(pair.target.url);
    await agent.waitForEvent('agent.started');
    // Manual mode with --yes proceeds despite a default that differs.
    await query(pair.target.url, "ALTER TABLE public.accounts ALTER COLUMN note SET DEFAULT 'differs'");
    const forced = await runCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--force', '--schema-sync', 'manual', '--yes', '--db', pair.target.url]);
    expect(forced.stderr).not.toMatch(/error/);
    expect(forced.code).toBe(0);
    await agent.waitForEvent('init.tables_emptied');
    await waitCaughtUp(pair);
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));

    // The peer (origin = none) takes only changes made on the target itself:
    // a local write arrives, the emptying did not, so its row is still there.
    await query(pair.target.url, "INSERT INTO public.accounts VALUES (-9, 9, 'local write on the target')");
    // Changes arrive in WAL order: once the later write is there, the
    // earlier emptying would have been applied too, had it been sent.
    await waitUntil('the local write to reach the peer', async () => (await query(peer!.url, 'SELECT 1 FROM public.accounts WHERE id = -9')).length === 1);
    expect(await query(peer.url, 'SELECT id, note FROM public.accounts ORDER BY id')).toEqual([
      { id: -9, note: 'local write on the target' },
      { id: -1, note: 'only on the target' },
    ]);
    await agent.stop();
  });
});
