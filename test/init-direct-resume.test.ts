// Direct init resumes exactly (issue 10, item 6), with a writer on the
// source all along: the agent SIGKILLed mid-copy (the snapshot's holder
// survives it, done parts are not copied again, the part cut off is copied
// once more); the snapshot lost (the source restarted, or its holder ended)
// so the tables not complete on it go to PostgreSQL's table sync; the
// target restarted mid-copy. The copy is made slow with
// STEEP_REPL_COPY_MAX_RATE so each fault lands while parts are in flight.
// The servers that restart are clusters of this file's own.
import { QueryConfig } from 'pg';
import { Cluster, startCluster, stopCluster } from '../lib/embedded-cluster';
import { clusterA, clusterB, OwnClusters, query, startOwnClusters } from './support/clusters';
import { contentHashes, createInitPair, InitPair, initStatus, sourceWrites, waitCaughtUp } from './support/init-pair';
import { AgentProcess, LogLine, processRunning, stopAllAgents } from './support/processes';
import { brief, partKey, PartRow, partsOf } from './support/init-parts';
import { waitUntil } from './support/wait';
import { startWriter, Writer } from './support/writer';

jest.setTimeout(180000);

// Bytes per second per worker while a fault is to land mid-copy: a part of
// about 1 MB takes some 3 s.
const slowCopy = { STEEP_REPL_COPY_MAX_RATE: '300000' };
const options = '{"parallel": 2, "split_tables_larger_than": "1MB", "max_parts": 4}';

// Holders the agents of this file started: ended here if a test failed before they did.
const holderPids = new Set<number>();
async function holderOf(agent: AgentProcess): Promise<number> {
  const exported = await agent.waitForEvent('init.snapshot_exported', 30000);
  const pid = Number(exported.holder_pid);
  expect(pid).toBeGreaterThan(0);
  holderPids.add(pid);
  return pid;
}

async function waitSynchronized(pair: InitPair, agent: AgentProcess, timeoutMs = 90000): Promise<void> {
  await waitUntil(
    'synchronized',
    async () => {
      const s = await initStatus(pair.target);
      if (s.state === 'failed') throw new Error(`init failed: ${s.progress?.error}\n${agent.raw.join('\n')}`);
      return s.state === 'synchronized';
    },
    timeoutMs,
  );
}

// Parts in flight: a part done (and, if asked, a whole table), and a part
// copying with rows already in it (reported from pg_stat_progress_copy).
async function waitMidCopy(pair: InitPair, agent: AgentProcess, want: { tableDone?: boolean }): Promise<PartRow[]> {
  return waitUntil(
    'parts done and one half copied',
    async () => {
      const s = await initStatus(pair.target);
      if (s.state === 'failed') throw new Error(`init failed: ${s.progress?.error}\n${agent.raw.join('\n')}`);
      const parts = await partsOf(pair);
      const done = parts.filter((p) => p.state === 'done');
      const tableDone = [...new Set(parts.map((p) => p.table))].some((t) => parts.filter((p) => p.table === t).every((p) => p.state === 'done'));
      // well short of its end, so it is still copying when the fault lands a moment later
      const halfway = parts.some((p) => p.state === 'copying' && p.rows_copied > 0 && p.rows_copied < 0.7 * p.rows_estimate);
      return done.length >= 1 && halfway && (!want.tableDone || tableDone) ? parts : undefined;
    },
    60000,
    100,
  );
}

// No copy session of the agent is left on the target (a killed agent's
// sessions end when the server sees their sockets close).
async function waitCopySessionsGone(pair: InitPair): Promise<void> {
  await waitUntil('the copy sessions to end', async () => {
    const [{ n }] = await query(pair.target.url, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'steep-repl copy'");
    return n === 0;
  });
}

// Inserts, updates and deletes on the source's user tables, as sourceWrites
// does, but with new accounts ids right above the seeded ones: the key
// stays dense, so its ranges (uniform over min..max) hold rows each. From
// transaction `offset` on: a writer started again after a restart of the
// source goes on with ids of its own.
function writesFrom(rows: number, offset: number): (n: number) => QueryConfig[] {
  const writes = sourceWrites(rows);
  return (m) => {
    const n = m + offset;
    const next = rows + 1 + n;
    return [{ text: 'INSERT INTO public.accounts VALUES ($1, 1, $2)', values: [next, 'new'] }, ...writes(n).slice(1)];
  };
}

const events = (agent: AgentProcess, event: string): LogLine[] => agent.lines.filter((l) => l.event === event);
const failures = (agent: AgentProcess) => agent.lines.filter((l) => ['agent.unhandled_rejection', 'agent.failed', 'init.failed', 'job.failed'].includes(l.event));

async function startDirect(pair: InitPair): Promise<void> {
  await query(pair.target.url, `SELECT steep_repl.start_init($1, $2, 'direct', $3)`, [pair.target.id, pair.source.id, options]);
}

describe('direct init resume', () => {
  let own: OwnClusters<'source' | 'target'>;
  let sourceCluster: Cluster;
  let targetCluster: Cluster;
  const pairs: InitPair[] = [];
  const writers: Writer[] = [];
  const startedAt = Date.now();

  const newPair = async (tag: string, source: Cluster, target: Cluster, rows: number) => {
    const pair = await createInitPair({ tag, sourceCluster: source, targetCluster: target, rows, sourceId: `Sourçe "${tag}"`, targetId: `Tärget ${tag}` });
    pairs.push(pair);
    return pair;
  };
  const writer = (pair: InitPair, rows: number, offset = 0) => {
    const w = startWriter(pair.source.url, writesFrom(rows, offset), { pauseMs: 10 });
    writers.push(w);
    return w;
  };

  beforeAll(async () => {
    own = await startOwnClusters('test-init-direct-resume', ['source', 'target']);
    sourceCluster = own.clusters.source;
    targetCluster = own.clusters.target;
  });
  afterAll(async () => {
    await Promise.all(writers.map((w) => w.stop().catch(() => undefined)));
    await stopAllAgents();
    for (const pid of holderPids) if (processRunning(pid)) process.kill(pid, 'SIGTERM');
    await waitUntil('the holders to exit', () => [...holderPids].every((pid) => !processRunning(pid)), 10000).catch(() => undefined);
    if (sourceCluster) await startCluster(sourceCluster).catch(() => undefined);
    if (targetCluster) await startCluster(targetCluster).catch(() => undefined);
    for (const pair of pairs) await pair.drop().catch(() => undefined);
    await own?.remove();
    console.log(`init-direct-resume: ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
  });

  it('agent SIGKILLed mid-copy: the holder keeps the snapshot, done parts are not copied again, the cut part is copied twice', async () => {
    const t0 = Date.now();
    const rows = 60000;
    const pair = await newPair('direct_kill', clusterA(), clusterB(), rows);
    let agent = await AgentProcess.start(pair.target.url, [], slowCopy);
    const w = writer(pair, rows);
    await startDirect(pair);
    const holder = await holderOf(agent);
    await waitMidCopy(pair, agent, {});
    await agent.stop('SIGKILL');
    await waitCopySessionsGone(pair);
    // What the killed agent left: read after its sessions ended (no commit is in flight).
    const atKill = await partsOf(pair);
    const doneBefore = atKill.filter((p) => p.state === 'done');
    const cut = atKill.filter((p) => p.state === 'copying');
    console.log(`at the kill: ${brief(atKill)}`);
    expect(doneBefore.length).toBeGreaterThanOrEqual(1);
    expect(cut.length).toBeGreaterThanOrEqual(1);
    expect(cut.some((p) => p.rows_copied > 0)).toBe(true);
    expect(atKill.some((p) => p.table === 'public.accounts' && p.split === 'key' && p.part_count >= 4)).toBe(true);
    expect(processRunning(holder)).toBe(true);

    agent = await AgentProcess.start(pair.target.url);
    await waitSynchronized(pair, agent);
    await w.stop();
    expect(w.counts.transactions).toBeGreaterThan(10);
    await waitCaughtUp(pair);
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));

    const after = await partsOf(pair);
    console.log(`after the resume: ${brief(after)}`);
    const byKey = new Map(after.map((p) => [partKey(p), p]));
    expect(after.every((p) => p.state === 'done')).toBe(true);
    for (const p of doneBefore) expect(byKey.get(partKey(p))).toMatchObject({ state: 'done', copies: 1 });
    for (const p of cut) expect(byKey.get(partKey(p))).toMatchObject({ state: 'done', copies: 2 });
    for (const p of after) if (!cut.some((c) => partKey(c) === partKey(p))) expect(p.copies).toBe(1);
    // Resumed on the same snapshot: no fallback, and a part of it logged as copied the second time.
    expect(events(agent, 'init.snapshot_lost')).toEqual([]);
    expect(events(agent, 'init.part_copied').filter((l) => l.copies === 2).length).toBe(cut.length);
    expect(failures(agent)).toEqual([]);
    await waitUntil('the holder to exit after synchronized', () => !processRunning(holder), 10000);
    await agent.stop();
    console.log(`agent SIGKILL: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  // Tables complete on the snapshot are kept, the others synced again by PostgreSQL.
  const expectFallback = async (pair: InitPair, agent: AgentProcess, atFault: PartRow[]) => {
    const after = await partsOf(pair);
    console.log(`after the fallback: ${brief(after)}`);
    const tables = [...new Set(after.map((p) => p.table))];
    const completeAtFault = tables.filter((t) => atFault.filter((p) => p.table === t).every((p) => p.state === 'done'));
    expect(completeAtFault.length).toBeGreaterThanOrEqual(1);
    for (const t of tables) {
      const mine = after.filter((p) => p.table === t);
      if (completeAtFault.includes(t)) expect(mine.every((p) => p.state === 'done' && p.copies === 1)).toBe(true);
      else expect(mine.every((p) => p.state === 'resynced')).toBe(true);
    }
    expect(after.some((p) => p.state === 'resynced')).toBe(true);
    const [lost] = events(agent, 'init.snapshot_lost');
    expect(lost).toBeDefined();
    expect(lost.kept).toEqual(expect.arrayContaining(completeAtFault));
    expect([...(lost.resync as string[])].sort()).toEqual(tables.filter((t) => !completeAtFault.includes(t)).sort());
    expect(events(agent, 'init.resync_started')).toHaveLength(1);
  };

  it('source restarted mid-copy: the snapshot is lost, complete tables are kept and the others synced again, identical', async () => {
    const t0 = Date.now();
    const rows = 20000;
    const pair = await newPair('direct_src', sourceCluster, clusterB(), rows);
    const agent = await AgentProcess.start(pair.target.url, [], { ...slowCopy, STEEP_REPL_SOURCE_GRACE_MS: '60000' });
    let w = writer(pair, rows);
    await startDirect(pair);
    const holder = await holderOf(agent);
    const atFault = await waitMidCopy(pair, agent, { tableDone: true });
    console.log(`at the source restart: ${brief(atFault)}`);
    // The writer cannot write through a restart: stopped before, started again after with ids of its own.
    const before = await w.stop();
    await stopCluster(sourceCluster.dataDir, 'fast');
    await startCluster(sourceCluster);
    w = writer(pair, rows, before.transactions);
    await waitUntil('the holder to end with its connection', () => !processRunning(holder), 15000);

    await waitSynchronized(pair, agent);
    await w.stop();
    expect(before.transactions + w.counts.transactions).toBeGreaterThan(10);
    await waitCaughtUp(pair);
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
    await expectFallback(pair, agent, await completedAtFault(pair, atFault));
    expect(failures(agent)).toEqual([]);
    await agent.stop();
    console.log(`source restart: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  // The workers imported the snapshot at their start and keep it in their
  // transactions: the copy goes on exactly on it without the holder.
  it('the holder alone SIGTERMed mid-copy: the running workers finish on the snapshot, identical, nothing copied twice', async () => {
    const t0 = Date.now();
    const rows = 20000;
    const pair = await newPair('direct_holder', clusterA(), clusterB(), rows);
    const agent = await AgentProcess.start(pair.target.url, [], slowCopy);
    const w = writer(pair, rows);
    await startDirect(pair);
    const holder = await holderOf(agent);
    const atFault = await waitMidCopy(pair, agent, { tableDone: true });
    console.log(`at the holder SIGTERM: ${brief(atFault)}`);
    process.kill(holder, 'SIGTERM');
    await waitUntil('the holder to exit', () => !processRunning(holder), 10000);

    await waitSynchronized(pair, agent);
    await w.stop();
    await waitCaughtUp(pair);
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
    const after = await partsOf(pair);
    console.log(`after the holder SIGTERM: ${brief(after)}`);
    expect(events(agent, 'init.snapshot_lost')).toEqual([]);
    expect(after.every((p) => p.state === 'done' && p.copies === 1)).toBe(true);
    expect(failures(agent)).toEqual([]);
    await agent.stop();
    console.log(`holder SIGTERM: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  it('the holder SIGTERMed, then the agent SIGKILLed mid-copy: the next agent finds the snapshot lost and falls back, identical', async () => {
    const t0 = Date.now();
    const rows = 20000;
    const pair = await newPair('direct_hk', clusterA(), clusterB(), rows);
    let agent = await AgentProcess.start(pair.target.url, [], slowCopy);
    const w = writer(pair, rows);
    await startDirect(pair);
    const holder = await holderOf(agent);
    await waitMidCopy(pair, agent, { tableDone: true });
    process.kill(holder, 'SIGTERM');
    await waitUntil('the holder to exit', () => !processRunning(holder), 10000);
    await agent.stop('SIGKILL');
    await waitCopySessionsGone(pair);
    const atKill = await partsOf(pair);
    console.log(`at the holder SIGTERM and the agent SIGKILL: ${brief(atKill)}`);

    agent = await AgentProcess.start(pair.target.url);
    await waitSynchronized(pair, agent);
    await w.stop();
    await waitCaughtUp(pair);
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
    await expectFallback(pair, agent, atKill);
    expect(failures(agent)).toEqual([]);
    await agent.stop();
    console.log(`holder SIGTERM + agent SIGKILL: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  it('target restarted mid-copy: the agent rides it out on the same snapshot, identical', async () => {
    const t0 = Date.now();
    const rows = 20000;
    const pair = await newPair('direct_tgt', clusterA(), targetCluster, rows);
    const agent = await AgentProcess.start(pair.target.url, ['--reconnect-timeout', '60'], { ...slowCopy, STEEP_REPL_CONNECT_TIMEOUT_MS: '60000' });
    const w = writer(pair, rows);
    await startDirect(pair);
    const holder = await holderOf(agent);
    const atFault = await waitMidCopy(pair, agent, {});
    console.log(`at the target restart: ${brief(atFault)}`);
    await stopCluster(targetCluster.dataDir, 'fast');
    await startCluster(targetCluster);
    // What was committed before the restart (a part whose done mark was in flight may have made it).
    const atRestart = await partsOf(pair);

    await waitSynchronized(pair, agent);
    await w.stop();
    await waitCaughtUp(pair);
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
    const after = await partsOf(pair);
    console.log(`after the target restart: ${brief(after)}`);
    expect(agent.lines.find((l) => l.event === 'init.target_lost')).toBeDefined();
    expect(events(agent, 'init.snapshot_lost')).toEqual([]);
    expect(after.every((p) => p.state === 'done')).toBe(true);
    const byKey = new Map(after.map((p) => [partKey(p), p]));
    for (const p of atRestart.filter((p) => p.state === 'done')) expect(byKey.get(partKey(p))!.copies).toBe(1);
    expect(after.some((p) => p.copies === 2)).toBe(true);
    expect(failures(agent)).toEqual([]);
    expect(agent.running).toBe(true);
    await waitUntil('the holder to exit after synchronized', () => !processRunning(holder), 10000);
    await agent.stop();
    console.log(`target restart: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
});

// The parts as they were when the fault hit, with what committed just
// before it: a part whose done mark committed between the last look and the
// fault counts as done at the fault (its copies stay 1).
async function completedAtFault(pair: InitPair, seen: PartRow[]): Promise<PartRow[]> {
  const now = await partsOf(pair);
  return seen.map((p) => {
    const later = now.find((n) => partKey(n) === partKey(p));
    return later && later.state === 'done' && later.copies === 1 && p.state !== 'done' ? { ...p, state: 'done' } : p;
  });
}
