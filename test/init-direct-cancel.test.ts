// The direct method cancelled in every phase, its copy kept from a peer,
// its options checked, and on PostgreSQL 15 (issue 10 item 7 and Proof):
// - a cancel while queued, right after the job was picked up, as soon as the
//   snapshot was exported, mid-copy (throttled, writer running: every copy
//   session gone within 2 s) and while catching up leaves nothing on either
//   node: no subscription, slot or publication, no copied rows, no parts, the
//   snapshot holder exited, no session left with a copy origin set up;
// - a peer subscribed to the target with origin = none receives none of the
//   rows the direct init copied or streamed, but what the target writes itself;
// - out-of-range options are refused before anything is recorded;
// - a PostgreSQL 15 pair ends synchronized with equal content.
import { escapeIdentifier } from 'pg';
import { Cluster } from '../lib/embedded-cluster';
import { getSlotLag } from '../lib/sql/getSlotLag';
import { clusterA, clusterB, createDatabase, dropDatabase, OwnClusters, query, startOwnClusters, withClient } from './support/clusters';
import {
  contentHashes,
  createInitPair,
  InitPair,
  initStatus,
  leftovers,
  sourceWrites,
  userSchemaSql,
  userTables,
  waitCaughtUp,
  waitJobDone,
} from './support/init-pair';
import { AgentProcess, LogLine, processRunning, runCli, startCli, stopAllAgents } from './support/processes';
import { waitUntil } from './support/wait';
import { startWriter, Writer } from './support/writer';

jest.setTimeout(120000);

const rows = 4000;
// bytes per second per copy worker: docs (3 rows of ~1 MB) is cut into
// parts of ~1 MB that take ~2.5 s each
const throttled = { STEEP_REPL_COPY_MAX_RATE: '400000' };
const direct = { parallel: 2, split_tables_larger_than: '1MB', max_parts: 4 };

const startDirect = (pair: InitPair, options: Record<string, unknown> = direct) =>
  query(pair.target.url, `SELECT steep_repl.start_init($1, $2, 'direct', $3) AS started`, [pair.target.id, pair.source.id, JSON.stringify(options)]);

const cancelFromSql = async (pair: InitPair) => (await query(pair.target.url, 'SELECT steep_repl.cancel_init($1) AS c', [pair.target.id]))[0].c;

// Sessions of this init's agent in one database, by application_name.
const sessions = async (url: string, applicationName: string): Promise<number> =>
  (await query(url, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1', [applicationName]))[0].n;

// No session has a copy worker's origin set up: each can be dropped (in a
// transaction rolled back; a drop of an origin in use fails "in use by PID").
async function originsInUse(url: string): Promise<string[]> {
  return withClient(url, async (client) => {
    const { rows: origins } = await client.query(
      `SELECT roname FROM pg_replication_origin
       WHERE roname LIKE 'steep\\_repl\\_local\\_' || (SELECT oid FROM pg_database WHERE datname = current_database()) || '%'`,
    );
    const inUse: string[] = [];
    for (const { roname } of origins) {
      await client.query('BEGIN');
      try {
        await client.query('SELECT pg_replication_origin_drop($1)', [roname]);
      } catch (err) {
        inUse.push(`${roname}: ${(err as Error).message}`);
      } finally {
        await client.query('ROLLBACK');
      }
    }
    return inUse;
  });
}

async function expectNothingLeft(pair: InitPair, holderPid?: number): Promise<void> {
  await waitJobDone(pair.target);
  const status = await initStatus(pair.target);
  expect(status).toMatchObject({ state: 'uninitialized', source_node_id: null, progress: null, tables: [], job: null, parts: null });
  expect(await leftovers(pair)).toEqual({ subscriptions: [], slots: [], publications: [] });
  // nothing for the reverse direction either
  expect(await query(pair.target.url, 'SELECT slot_name FROM pg_replication_slots WHERE database = current_database()')).toEqual([]);
  expect(await query(pair.target.url, 'SELECT pubname FROM pg_publication')).toEqual([]);
  for (const table of userTables) {
    expect([table, (await query(pair.target.url, `SELECT count(*)::int AS n FROM ${table}`))[0].n]).toEqual([table, 0]);
  }
  expect(
    await query(
      pair.target.url,
      `SELECT (SELECT count(*)::int FROM steep_repl.init_parts) AS parts, (SELECT count(*)::int FROM steep_repl.init_method_state) AS method_state,
              (SELECT count(*)::int FROM steep_repl.init_table_progress) AS tables, (SELECT count(*)::int FROM graphile_worker._private_jobs) AS jobs`,
    ),
  ).toEqual([{ parts: 0, method_state: 0, tables: 0, jobs: 0 }]);
  // the snapshot's holder and every copy session ended, on both servers
  if (holderPid) await waitUntil(`the snapshot holder (pid ${holderPid}) to exit`, () => !processRunning(holderPid), 5000, 50);
  for (const db of [pair.source, pair.target]) {
    expect(await sessions(db.url, 'steep-repl copy')).toBe(0);
    expect(await sessions(db.url, 'steep-repl snapshot holder')).toBe(0);
  }
  expect(await originsInUse(pair.target.url)).toEqual([]);
  // the emptying did not replicate back: the source keeps its rows
  expect(await query(pair.source.url, 'SELECT count(*)::int >= $1 AS kept FROM public.accounts', [rows * 0.9])).toEqual([{ kept: true }]);
}

// What the agent logged from line `from` on: a cancel ends the copy, it
// does not take the snapshot-lost path (table sync, a new subscription).
function expectNoDetour(agent: AgentProcess, from: number, phase: string): void {
  const events = agent.lines.slice(from).map((l) => l.event);
  console.log(`direct cancel ${phase}: agent events`, events.filter((e) => e.startsWith('init.')).join(' '));
  expect(events.filter((e) => ['init.snapshot_lost', 'init.resync_started', 'init.failed', 'init.copy_interrupted'].includes(e))).toEqual([]);
}

const cancelledEvent = async (pair: InitPair) =>
  (
    await query(
      pair.target.url,
      "SELECT details FROM steep_repl.audit_log WHERE event = 'init.cancelled' AND node_id = $1 ORDER BY audit_id DESC LIMIT 1",
      [pair.target.id],
    )
  )[0]?.details;

describe('direct init: refused options, cancel in every phase', () => {
  let pair: InitPair;
  let agent: AgentProcess | undefined;
  let writer: Writer | undefined;

  beforeAll(async () => {
    pair = await createInitPair({
      tag: 'direct_cancel',
      sourceCluster: clusterA(),
      targetCluster: clusterB(),
      sourceId: 'Dïrect "A" src',
      targetId: 'Dïrect "B" tgt',
      rows,
      // the target applies each row of public.slow in 4 ms: streamed rows hold the catch-up
      slowMsPerRow: 4,
    });
  });
  afterAll(async () => {
    await writer?.stop().catch(() => undefined);
    await stopAllAgents();
    await pair?.drop();
  });

  it('refuses out-of-range and unknown options with a clear message, and records nothing', async () => {
    const refused: Array<[Record<string, unknown>, RegExp]> = [
      [{ max_parts: 0 }, /^option max_parts must be a whole number from 1 to 1024, got 0: out of range$/],
      [{ split_tables_larger_than: '10kB' }, /^option split_tables_larger_than must be from 1048576 to \d+ bytes \(1024 TB\), got "10kB": out of range$/],
      [{ parallel: 17 }, /^option parallel must be a whole number from 1 to 16, got 17: out of range$/],
      [{ parallel: 2.5 }, /^option parallel must be a whole number from 1 to 16, got 2.5$/],
      [{ split_tables_larger_than: 'big' }, /^option split_tables_larger_than must be a whole number of bytes \(or a size such as '64MB'\)/],
      [{ max_part: 4 }, /^unknown init option 'max_part'$/],
    ];
    for (const [options, message] of refused) {
      const err = await startDirect(pair, options).then(
        () => undefined,
        (e) => e,
      );
      expect([options, err?.message]).toEqual([options, expect.stringMatching(message)]);
      expect(err.code).toBe('SR004');
    }
    // the unknown option's hint names what direct takes
    const typo = await startDirect(pair, { max_part: 4 }).catch((e) => e);
    expect(typo.hint).toMatch(/^method direct takes: .*\bmax_parts\b/);
    expect(typo.hint).toMatch(/\bsplit_tables_larger_than\b/);
    expect(typo.hint).toMatch(/\bparallel\b/);
    expect(await query(pair.target.url, 'SELECT count(*)::int AS n FROM steep_repl.init_progress')).toEqual([{ n: 0 }]);
    expect(await query(pair.target.url, 'SELECT count(*)::int AS n FROM graphile_worker._private_jobs')).toEqual([{ n: 0 }]);
    expect(await query(pair.target.url, "SELECT count(*)::int AS n FROM steep_repl.audit_log WHERE event IN ('init.started', 'init.state_change')")).toEqual([{ n: 0 }]);
    expect((await initStatus(pair.target)).state).toBe('uninitialized');
    // the bounds themselves are accepted (then cancelled while still queued)
    const [{ started }] = await startDirect(pair, { parallel: 16, max_parts: 1024, split_tables_larger_than: 1048576 });
    expect(started.options).toMatchObject({ parallel: 16, max_parts: 1024, split_tables_larger_than: 1048576 });
    expect(await cancelFromSql(pair)).toEqual({ node_id: pair.target.id, cancelled: true, state: 'uninitialized' });
    await expectNothingLeft(pair);
  });

  it('cancel_init while queued (no agent) removes the job and returns the node at once', async () => {
    const [{ started }] = await startDirect(pair);
    expect(started).toMatchObject({ method: 'direct', state: 'preparing', options: { parallel: 2, split_tables_larger_than: 1048576, max_parts: 4 } });
    expect(await cancelFromSql(pair)).toEqual({ node_id: pair.target.id, cancelled: true, state: 'uninitialized' });
    await expectNothingLeft(pair);
  });

  it('cancel_init right after the agent picked the job up (preparing) leaves nothing', async () => {
    agent = await AgentProcess.start(pair.target.url, [], throttled);
    await startDirect(pair);
    await agent.waitForEvent('init.job_started');
    const request = await cancelFromSql(pair);
    expect(request).toMatchObject({ cancel_requested: true });
    await agent.waitForEvent('init.cancelled');
    expectNoDetour(agent, 0, 'after the job was picked up');
    const exported = agent.lines.find((l) => l.event === 'init.snapshot_exported');
    await expectNothingLeft(pair, exported?.holder_pid as number | undefined);
    expect((await cancelledEvent(pair)).left_on_source).toEqual([]);
  });

  it('cancel_init as soon as the snapshot is exported: the holder exits, the slot goes', async () => {
    const seen = agent!.lines.length;
    await startDirect(pair);
    const exported = await agent!.waitFor((l) => l.event === 'init.snapshot_exported' && agent!.lines.indexOf(l) >= seen);
    await cancelFromSql(pair);
    const holderPid = Number(exported.holder_pid);
    expect(holderPid).toBeGreaterThan(0);
    await agent!.waitFor((l) => l.event === 'init.cancelled' && agent!.lines.indexOf(l) >= seen);
    expectNoDetour(agent!, seen, 'at the exported snapshot');
    await expectNothingLeft(pair, holderPid);
    const { removed } = await cancelledEvent(pair);
    expect(removed).toEqual(expect.arrayContaining([`slot ${pair.replicationName}`, `publication ${pair.replicationName}`]));
  });

  it('node cancel mid-copy under writes stops every copy worker within 2 s and removes what was copied', async () => {
    const seen = agent!.lines.length;
    const since = (l: LogLine) => agent!.lines.indexOf(l) >= seen;
    writer = startWriter(pair.source.url, sourceWrites(rows));
    await startDirect(pair);
    const exported = await agent!.waitFor((l) => l.event === 'init.snapshot_exported' && since(l));
    // one part done, another being copied by a worker
    await agent!.waitFor((l) => l.event === 'init.part_copied' && since(l), 30000);
    const copying = await waitUntil('a part being copied', async () => {
      const s = await initStatus(pair.target);
      return s.state === 'copying' && s.parts?.active.some((p: any) => Number(p.bytes_copied) > 0) && s.parts;
    }, 10000, 50);
    expect(copying.done).toBeGreaterThan(0);
    expect(copying.done).toBeLessThan(copying.total);
    expect(await sessions(pair.source.url, 'steep-repl copy')).toBeGreaterThan(0);
    expect(await sessions(pair.target.url, 'steep-repl copy')).toBeGreaterThan(0);
    // rows of the done parts are on the target before the cancel
    const copied = await query(pair.target.url, `SELECT (${userTables.map((t) => `(SELECT count(*) FROM ${t})`).join(' + ')})::int AS n`);
    expect(copied[0].n).toBeGreaterThan(0);

    const requestedAt = Date.now();
    const cancel = startCli(['node', 'cancel', pair.target.id, '--db', pair.target.url]);
    // every copy session gone from both servers
    const workersGoneAt = await waitUntil('the copy sessions to end', async () => {
      const left = (await sessions(pair.source.url, 'steep-repl copy')) + (await sessions(pair.target.url, 'steep-repl copy'));
      return left === 0 && Date.now();
    }, 10000, 25);
    const result = await cancel.result;
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    await writer.stop();
    writer = undefined;
    const cancelledLine = await agent!.waitFor((l) => l.event === 'init.cancelled' && since(l));
    const [times] = await query(
      pair.target.url,
      `SELECT extract(epoch FROM r.occurred_at)::float8 * 1000 AS requested, extract(epoch FROM c.occurred_at)::float8 * 1000 AS cancelled
       FROM (SELECT occurred_at FROM steep_repl.audit_log WHERE event = 'init.cancel_requested' ORDER BY audit_id DESC LIMIT 1) r,
            (SELECT occurred_at FROM steep_repl.audit_log WHERE event = 'init.cancelled' ORDER BY audit_id DESC LIMIT 1) c`,
    );
    const timings = {
      cli_spawn_to_request_ms: Math.round(times.requested - requestedAt),
      request_to_workers_gone_ms: Math.round(workersGoneAt - times.requested),
      request_to_cancelled_ms: Math.round(times.cancelled - times.requested),
      cli_total_ms: Date.now() - requestedAt,
    };
    console.log('direct cancel mid-copy', timings);
    expect(timings.request_to_workers_gone_ms).toBeLessThan(2000);
    expect(timings.request_to_cancelled_ms).toBeLessThan(5000);
    expect(cancelledLine.left_on_source).toEqual([]);
    expectNoDetour(agent!, seen, 'mid-copy');
    await expectNothingLeft(pair, Number(exported.holder_pid));
  });

  it('cancel_init while the agent is dead mid-copy: the holder outlived it, the next agent cleans up', async () => {
    await agent!.stop('SIGKILL');
    agent = new AgentProcess(pair.target.url, [], throttled);
    await agent.waitForEvent('agent.started');
    await startDirect(pair);
    const exported = await agent.waitForEvent('init.snapshot_exported');
    await agent.waitForEvent('init.part_copied', 30000);
    await agent.stop('SIGKILL');
    const holderPid = Number(exported.holder_pid);
    // the snapshot survives the agent (holder-process.ts)
    expect(processRunning(holderPid)).toBe(true);
    expect(await sessions(pair.source.url, 'steep-repl snapshot holder')).toBe(1);
    const request = await cancelFromSql(pair);
    expect(request).toMatchObject({ cancel_requested: true, state: 'copying' });
    agent = new AgentProcess(pair.target.url, [], throttled);
    await agent.waitForEvent('init.cancelled', 30000);
    expectNoDetour(agent, 0, 'after the agent died');
    await expectNothingLeft(pair, holderPid);
  });

  it('cancel_init while catching up (the target applies streamed rows slowly) leaves nothing', async () => {
    await agent!.stop();
    agent = await AgentProcess.start(pair.target.url);
    await startDirect(pair);
    await agent.waitForEvent('init.snapshot_exported');
    // after the snapshot: streamed, not copied, and applied at 4 ms a row, in
    // transactions of 100 rows (~0.4 s each) that show as they commit
    for (let from = 100; from < 2600; from += 100) {
      await query(pair.source.url, "INSERT INTO public.slow SELECT g, 'streamed ' || g FROM generate_series($1::int, $1::int + 99) g", [from]);
    }
    await waitUntil('catching_up', async () => {
      const s = await initStatus(pair.target);
      if (s.state === 'failed' || s.state === 'synchronized') throw new Error(`init ended ${s.state} before the cancel: ${s.progress?.error}`);
      return s.state === 'catching_up' && s.progress.lag_bytes !== null;
    }, 30000, 100);
    // the stream is applying: some streamed rows arrived
    await waitUntil('streamed rows on the target', async () => (await query(pair.target.url, 'SELECT count(*)::int AS n FROM public.slow'))[0].n > 1, 10000, 100);
    expect((await initStatus(pair.target)).state).toBe('catching_up');
    expect(await query(pair.target.url, 'SELECT subname FROM pg_subscription WHERE subname = $1', [pair.replicationName])).toHaveLength(1);
    const t0 = Date.now();
    await cancelFromSql(pair);
    await agent.waitForEvent('init.cancelled');
    expectNoDetour(agent, 0, 'while catching up');
    console.log('direct cancel while catching up: request to init.cancelled', Date.now() - t0, 'ms');
    await expectNothingLeft(pair, Number((agent.lines.find((l) => l.event === 'init.snapshot_exported')!).holder_pid));
    expect(await cancelledEvent(pair)).toMatchObject({ left_on_source: [], left_on_target: [] });
    expect((await cancelledEvent(pair)).removed).toEqual(expect.arrayContaining([`subscription ${pair.replicationName}`]));
    await query(pair.source.url, 'DELETE FROM public.slow WHERE id >= 100');
  });

  it('after all those cancels a direct init under writes completes with equal content', async () => {
    // rows of its own past those the mid-copy writer inserted
    const writes = startWriter(pair.source.url, (n) => sourceWrites(rows)(n + 100_000));
    let started;
    try {
      await waitUntil('writes on the source', () => writes.error ?? writes.counts.transactions > 20);
      started = await runCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--method', 'direct', '--parallel', '2', '--db', pair.target.url]);
    } finally {
      await writes.stop();
    }
    expect(started.stderr).not.toMatch(/error/i);
    expect(started.code).toBe(0);
    await waitCaughtUp(pair);
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
  });
});

describe('a peer subscribed to the direct target with origin = none', () => {
  let pair: InitPair;
  let peer: { name: string; url: string; cluster: Cluster } | undefined;
  // a slot name takes only a-z, 0-9 and _ (the subscription's name is its slot's)
  const peerSub = 'peer_of_b';

  beforeAll(async () => {
    pair = await createInitPair({ tag: 'direct_peer', sourceCluster: clusterA(), targetCluster: clusterB(), sourceId: 'Peer test A', targetId: 'Peer test "B"', rows });
    const cluster = clusterA();
    peer = { ...(await createDatabase(cluster, 'direct_peer_c')), cluster };
    await query(peer.url, userSchemaSql);
  });
  afterAll(async () => {
    await stopAllAgents();
    if (peer) {
      await query(peer.url, `ALTER SUBSCRIPTION ${escapeIdentifier(peerSub)} DISABLE`).catch(() => undefined);
      await query(peer.url, `DROP SUBSCRIPTION IF EXISTS ${escapeIdentifier(peerSub)}`).catch(() => undefined);
      await dropDatabase(peer.cluster, peer.name).catch(() => undefined);
    }
    await pair?.drop();
  });

  it('receives none of the rows B copied or streamed from A, and the rows written on B itself', async () => {
    const b = pair.target;
    await query(b.url, `CREATE PUBLICATION "peer pub" FOR TABLE ${userTables.join(', ')}`);
    await query(
      peer!.url,
      `CREATE SUBSCRIPTION ${escapeIdentifier(peerSub)} CONNECTION 'host=${b.cluster.host} port=${b.cluster.port} dbname=${b.name} user=${b.cluster.user}'
       PUBLICATION "peer pub" WITH (origin = none, copy_data = false)`,
    );
    const [{ slot }] = await query(peer!.url, 'SELECT subslotname AS slot FROM pg_subscription WHERE subname = $1', [peerSub]);
    // the peer streams from B before B's init
    await waitUntil('the peer to stream from B', async () => (await query(b.url, 'SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]))[0]?.active);

    const agent = await AgentProcess.start(b.url);
    const writer = startWriter(pair.source.url, sourceWrites(rows));
    try {
      await waitUntil('writes on A', () => writer.counts.transactions > 20);
      await startDirect(pair, { parallel: 2, split_tables_larger_than: '1MB' });
      await waitUntil('B synchronized', async () => {
        const s = await initStatus(b);
        if (s.state === 'failed') throw new Error(s.progress.error);
        return s.state === 'synchronized';
      }, 60000);
      await waitUntil('writes on A after B is synchronized', () => writer.counts.transactions > 150, 30000);
    } finally {
      await writer.stop();
    }
    // steep-repl's topology checks let this be: B sends on, A receives nothing
    expect(agent.lines.filter((l) => l.level === 'error' || l.event === 'init.failed')).toEqual([]);
    expect((await initStatus(b)).method_state).toMatchObject({ origin: 'none', copy_data: true });
    expect(agent.lines.filter((l) => l.event === 'init.part_copied').length).toBeGreaterThan(3);
    await waitCaughtUp(pair);
    expect(await contentHashes(b.url)).toEqual(await contentHashes(pair.source.url));

    // the peer confirmed everything B wrote so far: none of it reached it
    const caughtUp = async () => {
      const { current_lsn: lsn } = await withClient(b.url, (client) => getSlotLag(client, slot));
      await waitUntil(`the peer's slot to confirm ${lsn}`, () => withClient(b.url, async (client) => (await getSlotLag(client, slot, lsn)).reached));
    };
    await caughtUp();
    for (const table of userTables) {
      expect([table, (await query(peer!.url, `SELECT count(*)::int AS n FROM ${table}`))[0].n]).toEqual([table, 0]);
    }
    // still streaming (not stopped by an error): a row written on B itself arrives
    await query(b.url, "INSERT INTO public.accounts VALUES (-7, 7, 'written on B')");
    await waitUntil('the row written on B at the peer', async () => (await query(peer!.url, 'SELECT count(*)::int AS n FROM public.accounts'))[0].n === 1, 15000, 100);
    expect(await query(peer!.url, 'SELECT id, note FROM public.accounts')).toEqual([{ id: -7, note: 'written on B' }]);
    await caughtUp();
    for (const table of userTables.filter((t) => t !== 'public.accounts')) {
      expect([table, (await query(peer!.url, `SELECT count(*)::int AS n FROM ${table}`))[0].n]).toEqual([table, 0]);
    }
    await agent.stop();
  });
});

describe('direct on a PostgreSQL 15 pair', () => {
  let own: OwnClusters<'src' | 'tgt'> | undefined;
  let pair: InitPair | undefined;

  beforeAll(async () => {
    own = await startOwnClusters('test-direct-pg15', ['src', 'tgt'], { versions: { src: 15, tgt: 15 } });
  });
  afterAll(async () => {
    await stopAllAgents();
    await pair?.drop().catch(() => undefined);
    await own?.remove();
  });

  it('copies in parts under writes and ends synchronized with equal content', async () => {
    pair = await createInitPair({ tag: 'direct_pg15', sourceCluster: own!.clusters.src, targetCluster: own!.clusters.tgt, sourceId: 'Fünfzehn "Q"', targetId: 'Fünfzehn "Z"', rows });
    expect(await query(pair.target.url, "SELECT current_setting('server_version_num')::int / 10000 AS major")).toEqual([{ major: 15 }]);
    const agent = await AgentProcess.start(pair.target.url);
    const writer = startWriter(pair.source.url, sourceWrites(rows));
    try {
      await waitUntil('writes on the source', () => writer.counts.transactions > 20);
      await startDirect(pair, { parallel: 2, split_tables_larger_than: '1MB', max_parts: 4 });
      await waitUntil('synchronized', async () => {
        const s = await initStatus(pair!.target);
        if (s.state === 'failed') throw new Error(s.progress.error);
        return s.state === 'synchronized';
      }, 60000);
      await waitUntil('writes after synchronized', () => writer.counts.transactions > 150, 30000);
    } finally {
      await writer.stop();
    }
    expect((await initStatus(pair.target)).method_state).toMatchObject({ origin: null, copy_data: true });
    const parts = await query(pair.target.url, 'SELECT leaf_name, split, part_count, state, copies FROM steep_repl.init_parts ORDER BY 1, part_no');
    expect(parts.every((p) => p.state === 'done' && p.copies === 1)).toBe(true);
    expect(parts.some((p) => p.split === 'key' && p.part_count > 1)).toBe(true);
    expect(agent.lines.filter((l) => l.event === 'init.part_copied').every((l) => l.binary === true)).toBe(true);
    await waitCaughtUp(pair);
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
    await agent.stop();
  });
});
