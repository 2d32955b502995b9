// Where a node's data comes from and where it goes (issue 9 items 0, 1, 13):
// the reverse of a pair starts from the slot the node prepared when it
// became synchronized, so rows written there in between arrive; a source
// that forwards what it receives is subscribed with origin = any and ends
// identical; a cycle, a pair that would echo or lose changes, and a reverse
// without its prepared slot are refused before anything is created.
import { QueryConfig } from 'pg';
import { clusterA, clusterB, dropDatabase, query } from './support/clusters';
import { contentHashes, createInitPair, InitPair, initStatus, sourceWrites, userSchemaSql, waitCaughtUp, waitForCopyInProgress } from './support/init-pair';
import { createNodeDb, dropReplicationObjects, NodeDb, registerPair } from './support/node-pair';
import { AgentProcess, runCli, startCli, stopAllAgents } from './support/processes';
import { waitUntil } from './support/wait';
import { startWriter } from './support/writer';

jest.setTimeout(240000);

const replicationName = async (db: NodeDb, source: NodeDb, target: NodeDb): Promise<string> =>
  (await query(db.url, 'SELECT steep_repl.replication_name($1, $2) AS n', [source.id, target.id]))[0].n;

// Writes of a node that is not the pair's first source: rows of its own
// from id 2,000,000 (the first source's writer uses 1,000,000 on), updates
// and deletes among the seeded rows.
const ownWrites =
  (base: number) =>
  (n: number): QueryConfig[] => [
    { text: 'INSERT INTO public.accounts VALUES ($1, 2, $2)', values: [base + n, 'own'] },
    { text: 'UPDATE public.accounts SET balance = balance + 2 WHERE id = $1', values: [1 + ((n * 7) % 15000)] },
    { text: 'DELETE FROM public.accounts WHERE id = $1', values: [15000 + (n % 4000)] },
    { text: 'INSERT INTO public.events VALUES ($1, $2, $3)', values: [base + n, 1 + (n % 5), 'own'] },
  ];

// What exists of one direction's replication objects: the subscription on
// its target, the publication and slot on its source.
async function directionObjects(source: NodeDb, target: NodeDb) {
  const name = await replicationName(source, source, target);
  return {
    subscription: (await query(target.url, 'SELECT subname FROM pg_subscription WHERE subname = $1', [name])).length,
    publication: (await query(source.url, 'SELECT pubname FROM pg_publication WHERE pubname = $1', [name])).length,
    slot: (await query(source.url, 'SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1', [name])).length,
  };
}

async function cancelled(node: NodeDb): Promise<void> {
  const result = await runCli(['node', 'cancel', node.id, '--db', node.url]);
  if (result.code !== 0) throw new Error(`node cancel ${node.id} exited ${result.code}: ${result.stderr}`);
  expect((await initStatus(node)).state).toBe('uninitialized');
}

describe('the reverse direction of a pair', () => {
  let pair: InitPair;
  let a: NodeDb;
  let b: NodeDb;

  beforeAll(async () => {
    pair = await createInitPair({
      tag: 'topo_rev',
      sourceCluster: clusterA(),
      targetCluster: clusterB(),
      sourceId: 'Nöde "A" rév',
      targetId: 'Nöde "B" rév',
      slowRows: 1500,
      slowMsPerRow: 2,
    });
    ({ source: a, target: b } = pair);
    await AgentProcess.start(a.url);
    await AgentProcess.start(b.url);
  });
  afterAll(async () => {
    await stopAllAgents();
    await pair?.drop();
  });

  it('refuses a cycle, then carries every row written on b between the two inits and during the second', async () => {
    const reverseName = await replicationName(a, b, a);

    // b from a under writes on a; while it copies, a from b is a cycle.
    const writer = startWriter(a.url, sourceWrites());
    const first = startCli(['node', 'start', b.id, '--from', a.id, '--db', b.url]);
    await waitForCopyInProgress(pair);
    const cycle = await runCli(['node', 'start', a.id, '--from', b.id, '--db', a.url]);
    expect(cycle.code).toBe(1);
    expect(cycle.stderr).toContain(`node ${b.id} is itself being initialized from ${a.id} (copying)`);
    expect(cycle.stderr).toContain('would make a cycle');
    expect(cycle.stderr).toContain(`wait until ${b.id} is synchronized`);
    expect((await initStatus(a)).state).toBe('failed');
    // refused before anything was created for a <- b
    expect(await directionObjects(b, a)).toEqual({ subscription: 0, publication: 0, slot: 0 });

    const firstResult = await first.result;
    await writer.stop();
    expect(firstResult.stderr).not.toMatch(/error/i);
    expect(firstResult.code).toBe(0);
    await cancelled(a);
    await waitCaughtUp(pair);
    expect(await contentHashes(b.url)).toEqual(await contentHashes(a.url));

    // The reverse direction was prepared on b before b became synchronized.
    expect(await query(b.url, 'SELECT slot_name, for_node, purpose, publication, slot_exists, active FROM steep_repl.prepared_slots()')).toEqual([
      { slot_name: reverseName, for_node: a.id, purpose: 'reverse', publication: reverseName, slot_exists: true, active: false },
    ]);
    const [order] = await query(
      b.url,
      `SELECT (SELECT max(audit_id) FROM steep_repl.audit_log WHERE event = 'slot.prepared') AS prepared,
              (SELECT max(audit_id) FROM steep_repl.audit_log WHERE event = 'init.state_change' AND to_state = 'synchronized') AS synchronized`,
    );
    expect(Number(order.prepared)).toBeLessThan(Number(order.synchronized));
    expect(await query(b.url, 'SELECT count(*)::int AS n FROM pg_publication_tables WHERE pubname = $1', [reverseName])).toEqual([{ n: 5 }]);
    const [overview] = await query(b.url, 'SELECT prepared_slots, prepared_retained_bytes IS NOT NULL AS measured FROM steep_repl.node_overview WHERE is_local');
    expect(overview).toEqual({ prepared_slots: 1, measured: true });
    const shown = await runCli(['node', 'status', '--db', b.url]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`prepared slot\\s+${reverseName} for ${a.id} \\(reverse, waiting\\): retains \\S+ .*of WAL, expires `));

    // 100 rows written on b's own clients once it is synchronized, then
    // writes on b all through a's init from b.
    await query(b.url, "INSERT INTO public.accounts SELECT -g, g, 'written on b' FROM generate_series(1, 100) g");
    const writerB = startWriter(b.url, ownWrites(2_000_000));
    await waitUntil('writes on b', () => writerB.counts.transactions > 20);
    const second = await runCli(['node', 'start', a.id, '--from', b.id, '--db', a.url]);
    const { transactions } = await writerB.stop();
    expect(second.stderr).not.toMatch(/error/i);
    expect(second.code).toBe(0);
    expect(transactions).toBeGreaterThan(20);
    const status = await initStatus(a);
    expect(status.state).toBe('synchronized');
    expect(status.method_state).toMatchObject({ copy_data: false, reverse_of_pair: true, origin: 'none', prepared_slot: reverseName, slot_name: reverseName });

    await waitCaughtUp({ ...pair, source: b, target: a }, reverseName);
    expect(await query(a.url, "SELECT count(*)::int AS n FROM public.accounts WHERE id < 0 AND note = 'written on b'")).toEqual([{ n: 100 }]);
    expect(await contentHashes(a.url)).toEqual(await contentHashes(b.url));
    // The subscription owns the slot now: no prepared row, the slot streams.
    expect(await query(b.url, 'SELECT slot_name FROM steep_repl.init_slots')).toEqual([]);
    expect(await query(b.url, 'SELECT active FROM pg_replication_slots WHERE slot_name = $1', [reverseName])).toEqual([{ active: true }]);
    expect(await query(b.url, "SELECT details ->> 'slot_name' AS slot FROM steep_repl.audit_log WHERE event = 'slot.consumed'")).toEqual([
      { slot: reverseName },
    ]);
    // and a bidirectional pair: a row made on a reaches b
    await query(a.url, "INSERT INTO public.accounts VALUES (-1000, 1, 'written on a')");
    await waitCaughtUp(pair);
    expect(await contentHashes(a.url)).toEqual(await contentHashes(b.url));
  });
});

describe('a reverse direction whose prepared slot expired', () => {
  let pair: InitPair;
  let a: NodeDb;
  let b: NodeDb;
  let agentB: AgentProcess;

  beforeAll(async () => {
    pair = await createInitPair({ tag: 'topo_exp', sourceCluster: clusterB(), targetCluster: clusterA(), sourceId: 'node A exp', targetId: 'Node "B" ëxp', rows: 4000 });
    ({ source: a, target: b } = pair);
    await AgentProcess.start(a.url);
    agentB = await AgentProcess.start(b.url);
  });
  afterAll(async () => {
    await stopAllAgents();
    await pair?.drop();
  });

  it('is dropped by the agent at its expiry; the reverse init is then refused with what to do, and --force copies everything', async () => {
    const reverseName = await replicationName(a, b, a);
    // the slot b prepares lives 3 s
    const first = await runCli(['node', 'start', b.id, '--from', a.id, '--reverse-slot-ttl', '3', '--db', b.url]);
    expect(first.code).toBe(0);
    expect(await agentB.waitFor((l) => l.event === 'slot.expire_checked' && l.outcome === 'expired', 30000)).toMatchObject({ slot_name: reverseName });
    expect(await query(b.url, "SELECT details ->> 'slot_name' AS slot, details ->> 'publication_dropped' AS publication_dropped FROM steep_repl.audit_log WHERE event = 'slot.expired'")).toEqual([
      { slot: reverseName, publication_dropped: 'true' },
    ]);
    expect(await query(b.url, 'SELECT * FROM steep_repl.init_slots')).toEqual([]);
    expect(await directionObjects(b, a)).toEqual({ subscription: 0, publication: 0, slot: 0 });

    await query(b.url, "INSERT INTO public.accounts SELECT -g, g, 'written on b' FROM generate_series(1, 100) g");
    const refused = await runCli(['node', 'start', a.id, '--from', b.id, '--db', a.url]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`node ${b.id} holds no prepared slot for ${a.id} (${reverseName})`);
    expect(refused.stderr).toContain(`the rows written on ${b.id} since it became synchronized cannot reach ${a.id} without copying every table again`);
    expect(refused.stderr).toContain('start again with --force');
    expect(await directionObjects(b, a)).toEqual({ subscription: 0, publication: 0, slot: 0 });
    expect(await query(a.url, "SELECT count(*)::int AS n FROM public.accounts WHERE id < 0")).toEqual([{ n: 0 }]);
    await cancelled(a);

    const forced = await runCli(['node', 'start', a.id, '--from', b.id, '--force', '--db', a.url]);
    expect(forced.stderr).not.toMatch(/error/i);
    expect(forced.code).toBe(0);
    expect((await initStatus(a)).method_state).toMatchObject({ copy_data: true, reverse_of_pair: true, origin: 'none', prepared_slot: null });
    await waitCaughtUp({ ...pair, source: b, target: a }, reverseName);
    expect(await query(a.url, "SELECT count(*)::int AS n FROM public.accounts WHERE id < 0")).toEqual([{ n: 100 }]);
    expect(await contentHashes(a.url)).toEqual(await contentHashes(b.url));
  });
});

describe('a node that prepares no reverse slot (reverse_slot_ttl 0)', () => {
  let pair: InitPair;

  beforeAll(async () => {
    pair = await createInitPair({ tag: 'topo_ttl0', sourceCluster: clusterA(), targetCluster: clusterB(), sourceId: 'one way A', targetId: 'One "Way" B', rows: 500 });
  });
  afterAll(async () => {
    await stopAllAgents();
    await pair?.drop();
  });

  it('becomes synchronized holding no slot for the reverse direction, and says so', async () => {
    const agent = await AgentProcess.start(pair.target.url);
    const started = await runCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--reverse-slot-ttl', '0', '--db', pair.target.url]);
    expect(started.code).toBe(0);
    expect((await initStatus(pair.target)).state).toBe('synchronized');
    expect(await agent.waitFor((l) => l.event === 'init.reverse_not_prepared')).toMatchObject({ reason: expect.stringContaining('reverse_slot_ttl is 0') });
    expect(await query(pair.target.url, 'SELECT * FROM steep_repl.init_slots')).toEqual([]);
    expect(await directionObjects(pair.target, pair.source)).toEqual({ subscription: 0, publication: 0, slot: 0 });
  });
});

describe('a chained source', () => {
  let pair: InitPair;
  let a: NodeDb;
  let b: NodeDb;
  let c: NodeDb;

  beforeAll(async () => {
    pair = await createInitPair({ tag: 'topo_chain', sourceCluster: clusterA(), targetCluster: clusterB(), sourceId: 'Nöde "A" chain', targetId: 'Nöde "B" chain', rows: 6000 });
    ({ source: a, target: b } = pair);
    c = await createNodeDb(clusterA(), 'topo_chain_c', 'Nöde "C" chain', { installer: 'cli' });
    await query(c.url, userSchemaSql);
    await registerPair(b, c);
    await registerPair(a, c);
    for (const node of [a, b, c]) await AgentProcess.start(node.url);
  });
  afterAll(async () => {
    await stopAllAgents();
    await dropReplicationObjects([c, b, a]).catch(() => undefined);
    if (c) await dropDatabase(c.cluster, c.name).catch(() => undefined);
    await pair?.drop();
  });

  it('cascades a -> b -> c with origin = any under writes on a, ends identical, and refuses pairs that would echo or lose changes', async () => {
    const bFromA = await runCli(['node', 'start', b.id, '--from', a.id, '--db', b.url]);
    expect(bFromA.code).toBe(0);

    const writer = startWriter(a.url, sourceWrites(6000));
    await waitUntil('writes on a', () => writer.counts.transactions > 20);
    const cFromB = await runCli(['node', 'start', c.id, '--from', b.id, '--db', c.url]);
    await waitUntil('more writes on a after c is synchronized', () => writer.counts.transactions > 150 || undefined, 60000);
    const { transactions } = await writer.stop();
    expect(cFromB.stderr).not.toMatch(/error/i);
    expect(cFromB.code).toBe(0);
    expect(transactions).toBeGreaterThan(150);
    expect((await initStatus(c)).method_state).toMatchObject({ origin: 'any', copy_data: true, reverse_of_pair: false });
    const cName = await replicationName(c, b, c);
    expect(await query(c.url, 'SELECT suborigin FROM pg_subscription WHERE subname = $1', [cName])).toEqual([{ suborigin: 'any' }]);
    // no reverse slot for a pair that could not be bidirectional
    expect(await query(c.url, 'SELECT * FROM steep_repl.init_slots')).toEqual([]);

    await waitCaughtUp(pair);
    await waitCaughtUp({ ...pair, source: b, target: c }, cName);
    const hashes = await contentHashes(a.url);
    expect(await contentHashes(b.url)).toEqual(hashes);
    expect(await contentHashes(c.url)).toEqual(hashes);

    // a from c closes a loop a -> b -> c -> a: refused, nothing created.
    const loop = await runCli(['node', 'start', a.id, '--from', c.id, '--db', a.url]);
    expect(loop.code).toBe(1);
    expect(loop.stderr).toContain(`node ${c.id} forwards changes it receives (from node ${b.id}`);
    expect(loop.stderr).toContain(`but ${a.id} itself sends changes on`);
    expect(await directionObjects(c, a)).toEqual({ subscription: 0, publication: 0, slot: 0 });
    await cancelled(a);

    // b also receiving from elsewhere: the reverse a from b would lose or echo.
    await query(c.url, 'CREATE PUBLICATION "hand made"');
    await query(b.url, `CREATE SUBSCRIPTION "hand made" CONNECTION 'host=${c.cluster.host} port=${c.cluster.port} dbname=${c.name}' PUBLICATION "hand made" WITH (connect = false, slot_name = NONE)`);
    const echo = await runCli(['node', 'start', a.id, '--from', b.id, '--db', a.url]);
    expect(echo.code).toBe(1);
    expect(echo.stderr).toContain(`node ${b.id} receives changes from ${a.id} and also from subscription hand made (not made by steep-repl)`);
    expect(echo.stderr).toContain('origin = none drops them');
    expect(echo.stderr).toContain('origin = any echoes them');
    // the prepared slot b holds for a is not a's failed init's: it stays through the cancel
    await cancelled(a);
    const reverseName = await replicationName(b, b, a);
    expect(await query(b.url, 'SELECT slot_name, slot_exists FROM steep_repl.prepared_slots()')).toEqual([{ slot_name: reverseName, slot_exists: true }]);
    await query(b.url, 'DROP SUBSCRIPTION "hand made"');
    await query(c.url, 'DROP PUBLICATION "hand made"');

    // Without it, a <-> b is a bidirectional pair and b still feeds c.
    const aFromB = await runCli(['node', 'start', a.id, '--from', b.id, '--db', a.url]);
    expect(aFromB.stderr).not.toMatch(/error/i);
    expect(aFromB.code).toBe(0);
    expect((await initStatus(a)).method_state).toMatchObject({ origin: 'none', copy_data: false, prepared_slot: reverseName });
    await query(a.url, "INSERT INTO public.accounts VALUES (-1, 1, 'written on a')");
    await query(b.url, "INSERT INTO public.accounts VALUES (-2, 2, 'written on b')");
    await waitCaughtUp(pair);
    await waitCaughtUp({ ...pair, source: b, target: a }, reverseName);
    await waitCaughtUp({ ...pair, source: b, target: c }, cName);
    const all = await contentHashes(a.url);
    expect(await contentHashes(b.url)).toEqual(all);
    expect(await contentHashes(c.url)).toEqual(all);
    expect(await query(c.url, 'SELECT id FROM public.accounts WHERE id < 0 ORDER BY id')).toEqual([{ id: -2 }, { id: -1 }]);
  });
});
