// The source stops mid-copy: the init fails with a message that says what
// to do, keeps what the retry needs, and --resume completes it once the
// source is back. The source runs on a cluster of this file's own.
import { Cluster, startCluster, stopCluster } from '../lib/embedded-cluster';
import { shellWord } from '../lib/format';
import { clusterB, OwnClusters, query, startOwnClusters } from './support/clusters';
import { contentHashes, createInitPair, InitPair, initStatus, leftovers, waitCaughtUp, waitJobDone, waitForCopyInProgress } from './support/init-pair';
import { AgentProcess, runCli, stopAllAgents } from './support/processes';

jest.setTimeout(120000);

describe('init when the source stops mid-copy', () => {
  let own: OwnClusters<'source'>;
  let sourceCluster: Cluster;
  let pair: InitPair;

  beforeAll(async () => {
    own = await startOwnClusters('test-init-source-stop', ['source']);
    sourceCluster = own.clusters.source;
    pair = await createInitPair({
      tag: 'init_stop',
      sourceCluster,
      targetCluster: clusterB(),
      rows: 4000,
      slowRows: 2500,
      slowMsPerRow: 2,
    });
  });
  afterAll(async () => {
    await stopAllAgents();
    if (sourceCluster) await startCluster(sourceCluster).catch(() => undefined);
    await pair?.drop();
    await own?.remove();
  });

  it('a cancel while the source is down cleans the target and says what to drop on the source', async () => {
    const agent = new AgentProcess(pair.target.url, [], { STEEP_REPL_SOURCE_GRACE_MS: '60000' });
    await agent.waitForEvent('agent.started');
    await query(pair.target.url, 'SELECT steep_repl.start_init($1, $2)', [pair.target.id, pair.source.id]);
    await waitForCopyInProgress(pair);
    await stopCluster(sourceCluster.dataDir, 'fast');
    const cancel = await runCli(['node', 'cancel', pair.target.id, '--db', pair.target.url]);
    expect(cancel.code).toBe(0);
    expect(cancel.stdout).toMatch(/the source could not be reached, so run there:/);
    await waitJobDone(pair.target);
    const status = await initStatus(pair.target);
    expect(status).toMatchObject({ state: 'uninitialized', progress: null, job: null });
    expect(await query(pair.target.url, 'SELECT subname FROM pg_subscription WHERE subname = $1', [pair.replicationName])).toEqual([]);
    expect(await query(pair.target.url, 'SELECT count(*)::int AS n FROM public.accounts')).toEqual([{ n: 0 }]);

    // The statements it printed remove what was left on the source.
    await startCluster(sourceCluster);
    const statements = [...cancel.stdout.matchAll(/^\s+(?:slots|publication): (.*)$/gm)].map((m) => m[1]);
    expect(statements).toHaveLength(2);
    for (const statement of statements) await query(pair.source.url, statement);
    expect(await leftovers(pair)).toEqual({ subscriptions: [], slots: [], publications: [] });
    await agent.stop();
  });

  it('fails with an actionable message, keeps the subscription, and --resume completes after the source is back', async () => {
    const agent = new AgentProcess(pair.target.url, [], { STEEP_REPL_SOURCE_GRACE_MS: '2000' });
    await agent.waitForEvent('agent.started');
    const start = runCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--db', pair.target.url]);
    await waitForCopyInProgress(pair);
    await stopCluster(sourceCluster.dataDir, 'fast');

    const failed = await start;
    expect(failed.code).toBe(6);
    expect(failed.stderr).toMatch(/initialization of .* failed/);
    const status = await initStatus(pair.target);
    expect(status.state).toBe('failed');
    expect(status.progress.failure_kind).toBe('connection');
    expect(status.progress.error).toMatch(/source node .* is unreachable/);
    expect(status.progress.error).toMatch(/are kept/);
    // The node ids have spaces and quotes: the suggested command quotes them for a shell.
    expect(status.progress.error).toContain(`steep-repl node start ${shellWord(pair.target.id)} --from ${shellWord(pair.source.id)} --resume`);
    expect(shellWord(pair.target.id)).toMatch(/^'.*'$/);
    await waitJobDone(pair.target);
    // Kept for the retry, and stopped so it does not retry on its own.
    const [sub] = await query(pair.target.url, 'SELECT subenabled FROM pg_subscription WHERE subname = $1', [pair.replicationName]);
    expect(sub).toEqual({ subenabled: false });
    const [failedEvent] = await query(pair.target.url, "SELECT details FROM steep_repl.audit_log WHERE event = 'init.failed' AND node_id = $1", [
      pair.target.id,
    ]);
    expect(failedEvent.details.kind).toBe('connection');

    // A plain start is refused with the way forward; --resume is the way.
    const plain = await runCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--db', pair.target.url]);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/--resume/);

    await startCluster(sourceCluster);
    await query(pair.source.url, "INSERT INTO public.accounts VALUES (-7, 7, 'written while the init was failed')");
    const resumed = await runCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--resume', '--db', pair.target.url]);
    expect(resumed.stderr).not.toMatch(/error/);
    expect(resumed.code).toBe(0);
    expect((await initStatus(pair.target)).state).toBe('synchronized');
    await waitCaughtUp(pair);
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
    const left = await leftovers(pair);
    expect(left.subscriptions).toEqual([pair.replicationName]);
    expect(left.slots).toEqual([pair.replicationName]);
  });
});
