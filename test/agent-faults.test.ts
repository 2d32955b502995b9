// The agent's processes under faults: the target server restarts during an
// init (the agent rides it out and the init completes identical), a second
// agent (with and without rights on steep_repl), concurrent installs, and a
// double Ctrl+C during node start. The target runs on a cluster of this
// file's own, since it is restarted.
import { Cluster, startCluster, stopCluster } from '../lib/embedded-cluster';
import { clusterA, OwnClusters, query, startOwnClusters } from './support/clusters';
import { contentHashes, createInitPair, InitPair, initStatus, sourceWrites, waitCaughtUp, waitForCopyInProgress } from './support/init-pair';
import { AgentProcess, stopAllAgents } from './support/processes';
import { waitUntil } from './support/wait';
import { startWriter, Writer } from './support/writer';

jest.setTimeout(180000);

describe('agent faults', () => {
  let own: OwnClusters<'target'>;
  let targetCluster: Cluster;
  let pair: InitPair;
  let writer: Writer | undefined;

  beforeAll(async () => {
    own = await startOwnClusters('test-agent-faults', ['target']);
    targetCluster = own.clusters.target;
    pair = await createInitPair({
      tag: 'agent_faults',
      sourceCluster: clusterA(),
      targetCluster,
      sourceId: 'Sourçe "A"',
      targetId: 'Target b',
      rows: 4000,
      slowRows: 3000,
      slowMsPerRow: 2,
    });
  });
  afterAll(async () => {
    await writer?.stop().catch(() => undefined);
    await stopAllAgents();
    if (targetCluster) await startCluster(targetCluster).catch(() => undefined);
    await pair?.drop();
    await own?.remove();
  });

  it('target server restarted mid-copy under writes: the agent rides it out and the init completes identical', async () => {
    const agent = await AgentProcess.start(pair.target.url, ['--reconnect-timeout', '60'], { STEEP_REPL_CONNECT_TIMEOUT_MS: '60000' });
    writer = startWriter(pair.source.url, sourceWrites(4000), { pauseMs: 10 });
    await query(pair.target.url, 'SELECT steep_repl.start_init($1, $2)', [pair.target.id, pair.source.id]);
    await waitForCopyInProgress(pair);

    await stopCluster(targetCluster.dataDir, 'fast');
    await agent.waitForEvent('agent.connection_lost');
    // The scenario: the server stays away for 3 s (a restart, not an assertion's wait).
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await startCluster(targetCluster);
    await agent.waitForEvent('agent.reconnected', 60000);

    await agent.waitForEvent('init.completed', 120000);
    expect(agent.running).toBe(true);
    const status = await initStatus(pair.target);
    expect(status.state).toBe('synchronized');
    const counts = await writer.stop();
    writer = undefined;
    expect(counts.transactions).toBeGreaterThan(0);
    await waitCaughtUp(pair);
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
    expect(agent.lines.filter((l) => ['agent.unhandled_rejection', 'agent.failed', 'init.failed', 'job.failed'].includes(l.event))).toEqual([]);
    // The same job rode it out: it lost its session, ran again from the tables, and completed in its first attempt.
    expect(agent.lines.find((l) => l.event === 'init.target_lost')).toMatchObject({ node_id: pair.target.id, level: 'warn' });
    expect(agent.lines.filter((l) => l.event === 'job.started').map((l) => l.attempt)).toEqual([1]);
    expect(agent.lines.filter((l) => l.event === 'init.job_started').map((l) => l.state)).toEqual(['preparing', 'copying']);
    await agent.waitForEvent('job.completed');
    expect(agent.raw.filter((l) => /ECONNREFUSED/.test(l) && !/^\{/.test(l))).toEqual([]);
    expect(await agent.stop()).toBe(0);
  });
});
