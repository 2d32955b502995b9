// PostgreSQL 15 next to 18 (SPEC §4: capabilities are detected, not
// assumed). 15 → 18 is the upgrade path: 15 cannot filter by origin, so the
// 18 subscriber takes everything (origin = any) and no reverse slot is
// prepared; the reverse, 15 from 18, would be a bidirectional pair and is
// refused before anything is created; 18 → 15 one-way subscribes on 15
// without the options 15 lacks. Own clusters: one on Debian's PostgreSQL 15
// binaries (the postgresql-15 package; without it this file fails saying so).
import { Cluster } from '../lib/embedded-cluster';
import { OwnClusters, query, startOwnClusters } from './support/clusters';
import { contentHashes, createInitPair, InitPair, initStatus, leftovers, sourceWrites, waitCaughtUp } from './support/init-pair';
import { NodeDb } from './support/node-pair';
import { AgentProcess, runCli, stopAllAgents } from './support/processes';
import { waitUntil } from './support/wait';
import { startWriter } from './support/writer';

jest.setTimeout(120000);

const rows = 3000;

const serverMajor = async (db: NodeDb): Promise<number> => Math.floor(Number((await query(db.url, 'SHOW server_version_num'))[0].server_version_num) / 10000);

// An init of target from source under writes on the source all through it.
async function initUnderWrites(source: NodeDb, target: NodeDb): Promise<{ code: number; stderr: string; transactions: number }> {
  const writer = startWriter(source.url, sourceWrites(rows));
  await waitUntil('writes on the source', () => writer.counts.transactions > 20);
  const result = await runCli(['node', 'start', target.id, '--from', source.id, '--db', target.url]);
  await waitUntil('writes on the source after the init', () => writer.counts.transactions > 200 || writer.error !== undefined || undefined, 60000);
  const { transactions } = await writer.stop();
  return { code: result.code, stderr: result.stderr, transactions };
}

describe('PostgreSQL 15 next to 18', () => {
  let own: OwnClusters<'pg15' | 'pg18'>;
  let pg15: Cluster;
  let pg18: Cluster;
  let upgrade: InitPair | undefined;
  let down: InitPair | undefined;
  const agents: Record<string, AgentProcess> = {};

  beforeAll(async () => {
    own = await startOwnClusters('test-pg15', ['pg15', 'pg18'], { versions: { pg15: 15 } });
    ({ pg15, pg18 } = own.clusters);
  });
  afterAll(async () => {
    await stopAllAgents();
    await upgrade?.drop().catch(() => undefined);
    await down?.drop().catch(() => undefined);
    await own?.remove();
  });

  it('runs the two servers it was asked for', async () => {
    expect(await query(pg15.url(), "SELECT current_setting('server_version_num')::int / 10000 AS major")).toEqual([{ major: 15 }]);
    expect(await query(pg18.url(), "SELECT current_setting('server_version_num')::int / 10000 AS major")).toEqual([{ major: 18 }]);
  });

  it('15 → 18 (the upgrade path) under writes: synchronized, identical, origin = any, no reverse slot; then 15 from 18 is refused before anything is created', async () => {
    upgrade = await createInitPair({
      tag: 'pg15_up',
      sourceCluster: pg15,
      targetCluster: pg18,
      sourceId: 'Nöde "Fünfzehn" 15',
      targetId: 'Nöde "Achtzehn" 18',
      rows,
    });
    const { source: old, target: next } = upgrade;
    expect([await serverMajor(old), await serverMajor(next)]).toEqual([15, 18]);
    agents.old = await AgentProcess.start(old.url);
    agents.next = await AgentProcess.start(next.url);

    const first = await initUnderWrites(old, next);
    expect(first.stderr).not.toMatch(/error/i);
    expect(first.code).toBe(0);
    expect(first.transactions).toBeGreaterThan(200);
    const status = await initStatus(next);
    expect(status.state).toBe('synchronized');
    // a 15 publisher sends every change whatever its origin: the 18 subscriber
    // says so (origin = any) rather than asking for a filter 15 cannot apply
    expect(status.method_state).toMatchObject({ origin: 'any', copy_data: true, reverse_of_pair: false, prepared_slot: null });
    expect(await query(next.url, 'SELECT suborigin, substream FROM pg_subscription WHERE subname = $1', [upgrade.replicationName])).toEqual([
      { suborigin: 'any', substream: 'p' },
    ]);
    await waitCaughtUp(upgrade);
    expect(await contentHashes(next.url)).toEqual(await contentHashes(old.url));

    // no reverse slot: such a pair could not be bidirectional
    const notPrepared = await agents.next.waitFor((l) => l.event === 'init.reverse_not_prepared', 10000);
    expect(notPrepared.reason).toBe(`subscribed with origin = any: a bidirectional pair with ${old.id} would be refused`);
    expect(await query(next.url, 'SELECT * FROM steep_repl.init_slots')).toEqual([]);
    expect(await query(next.url, 'SELECT slot_name FROM pg_replication_slots')).toEqual([]);
    expect(await query(next.url, 'SELECT pubname FROM pg_publication')).toEqual([]);

    // 15 from 18 would make the pair bidirectional: refused, nothing created
    const before = { old: await leftovers({ ...upgrade, source: next, target: old }), next: await leftovers(upgrade) };
    const reverse = await runCli(['node', 'start', old.id, '--from', next.id, '--db', old.url]);
    expect(reverse.code).toBe(1);
    const refusal = `a bidirectional pair ${next.id} <-> ${old.id} needs PostgreSQL 16 or later on both nodes (origin = none), and ${old.id} runs PostgreSQL 15: every change would loop between them`;
    expect(reverse.stderr).toContain(refusal);
    expect(reverse.stderr).toContain('upgrade both servers to 16 or later, or keep the pair one-way');
    const refused = await initStatus(old);
    expect(refused.state).toBe('failed');
    expect(refused.progress.error).toContain(refusal);
    // nothing on either side for old <- next: no subscription on old, no
    // publication or slot on next; the upgrade direction as it was
    expect(await leftovers({ ...upgrade, source: next, target: old })).toEqual({ subscriptions: [], slots: [], publications: [] });
    expect(before.old).toEqual({ subscriptions: [], slots: [], publications: [] });
    expect(await leftovers(upgrade)).toEqual(before.next);
    expect(before.next).toEqual({ subscriptions: [upgrade.replicationName], slots: [upgrade.replicationName], publications: [upgrade.replicationName] });
    const cancel = await runCli(['node', 'cancel', old.id, '--db', old.url]);
    expect(cancel.code).toBe(0);
    expect((await initStatus(old)).state).toBe('uninitialized');

    // the upgrade direction still streams
    await query(old.url, "INSERT INTO public.accounts VALUES (-1, 1, 'after the refusal')");
    await waitCaughtUp(upgrade);
    expect(await contentHashes(next.url)).toEqual(await contentHashes(old.url));
  });

  it('18 → 15 one-way under writes: synchronized, identical, subscribed on 15 without origin and with streaming = on', async () => {
    down = await createInitPair({
      tag: 'pg15_down',
      sourceCluster: pg18,
      targetCluster: pg15,
      sourceId: 'Nöde "Achtzehn" ab',
      targetId: 'Nöde "Fünfzehn" ab',
      rows,
    });
    const { source, target } = down;
    agents.source = await AgentProcess.start(source.url);
    agents.target = await AgentProcess.start(target.url);

    const result = await initUnderWrites(source, target);
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.code).toBe(0);
    expect(result.transactions).toBeGreaterThan(200);
    const status = await initStatus(target);
    expect(status.state).toBe('synchronized');
    expect(status.method_state).toMatchObject({ origin: null, copy_data: true, reverse_of_pair: false });
    // 15's pg_subscription has no suborigin; substream is a boolean there
    expect(await query(target.url, "SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = 'pg_subscription'::regclass AND attname = 'suborigin'")).toEqual([
      { n: 0 },
    ]);
    expect(await query(target.url, 'SELECT substream FROM pg_subscription WHERE subname = $1', [down.replicationName])).toEqual([{ substream: true }]);
    await waitCaughtUp(down);
    expect(await contentHashes(target.url)).toEqual(await contentHashes(source.url));
    const notPrepared = await agents.target.waitFor((l) => l.event === 'init.reverse_not_prepared', 10000);
    expect(notPrepared.reason).toBe(`subscribed with origin = any (server default): a bidirectional pair with ${source.id} would be refused`);
    expect(await query(target.url, 'SELECT * FROM steep_repl.init_slots')).toEqual([]);
  });
});
