// The agent when its server restarts or goes away for good: a cluster of
// this file's own, stopped and started under a running agent.
import { Cluster, startCluster, stopCluster } from '../lib/embedded-cluster';
import { registerNode } from '../lib/sql/registerNode';
import { createNodeDatabase, OwnClusters, query, startOwnClusters, withClient } from './support/clusters';
import { AgentProcess, stopAllAgents } from './support/processes';
import { SilentServer, silentServer } from './support/silent-server';

describe('agent and a server that restarts', () => {
  let own: OwnClusters<'node'>;
  let cluster: Cluster;
  let db: { name: string; url: string };
  let silent: SilentServer;

  beforeAll(async () => {
    own = await startOwnClusters('test-agent-restart', ['node']);
    cluster = own.clusters.node;
    // Installed by a CLI process: this file stops the server.
    db = await createNodeDatabase(cluster, 'restart', { installer: 'cli' });
    silent = await silentServer();
    await withClient(db.url, async (client) => {
      await registerNode(client, { node_id: 'restart_local', host: '127.0.0.1', port: cluster.port, dbname: db.name, user: 'postgres', is_local: true });
      await registerNode(client, { node_id: 'peer_silent', host: '127.0.0.1', port: silent.port, dbname: 'app' });
    });
  });
  afterAll(async () => {
    await stopAllAgents();
    await silent?.close();
    await own?.remove();
  });

  it('survives a restart: reconnects, heartbeats, runs jobs and hears cancel requests again', async () => {
    const agent = new AgentProcess(db.url, ['--heartbeat-interval', '1', '--reconnect-timeout', '30'], {
      STEEP_REPL_CONNECT_TIMEOUT_MS: '60000',
    });
    await agent.waitForEvent('agent.started');
    await stopCluster(cluster.dataDir, 'fast');
    expect(await agent.waitForEvent('agent.connection_lost')).toMatchObject({
      level: 'error',
      database: `127.0.0.1:${cluster.port}/${db.name}`,
      retrying_for_ms: 30000,
    });
    await startCluster(cluster);
    const restartedAt = new Date();
    await agent.waitForEvent('agent.reconnected');
    expect(agent.running).toBe(true);

    const [{ id }] = await query(db.url, `SELECT steep_repl.enqueue('probe_node', '{"node_id": "restart_local"}') AS id`);
    await agent.waitFor((l) => l.event === 'job.completed' && String(l.job_id) === String(id));
    const [local] = await query(db.url, "SELECT status, last_seen FROM steep_repl.nodes WHERE node_id = 'restart_local'");
    expect(local.status).toBe('healthy');
    expect(local.last_seen.getTime()).toBeGreaterThanOrEqual(restartedAt.getTime() - 1000);

    // The cancel listener is back: a hanging probe is aborted on request.
    const [{ hanging }] = await query(db.url, `SELECT steep_repl.enqueue('probe_node', '{"node_id": "peer_silent"}') AS hanging`);
    await agent.waitFor((l) => l.event === 'job.started' && String(l.job_id) === String(hanging));
    await agent.waitForEvent('agent.listen_reconnected');
    await query(db.url, "SELECT steep_repl.request_job_cancel('peer_silent')");
    expect(await agent.waitForEvent('node.probe_cancelled', 5000)).toMatchObject({ node_id: 'peer_silent' });
    expect(await agent.stop()).toBe(0);
    expect(agent.lines.filter((l) => l.event === 'agent.failed')).toEqual([]);
  });

  it('stops cleanly on SIGTERM while its database is away (exit 0)', async () => {
    const agent = new AgentProcess(db.url, ['--reconnect-timeout', '30']);
    await agent.waitForEvent('agent.started');
    await stopCluster(cluster.dataDir, 'fast');
    try {
      await agent.waitForEvent('agent.connection_lost');
      const stopping = Date.now();
      expect(await agent.stop('SIGTERM')).toBe(0);
      // It does not sit out the 30 s retry window (about 1 s idle; the bound
      // leaves room for a loaded CI machine).
      expect(Date.now() - stopping).toBeLessThan(15000);
      expect(agent.lines.at(-1)).toMatchObject({ event: 'agent.stopped', level: 'info', reason: 'received SIGTERM' });
    } finally {
      await startCluster(cluster);
    }
  });

  it('exits 6 with a clear log line when the server stays away', async () => {
    const agent = new AgentProcess(db.url, ['--reconnect-timeout', '2']);
    await agent.waitForEvent('agent.started');
    const stoppedAt = Date.now();
    await stopCluster(cluster.dataDir, 'fast');
    expect(await agent.waitForExit(15000)).toBe(6);
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(2000);
    expect(agent.lines.find((l) => l.event === 'agent.failed')).toMatchObject({
      level: 'error',
      error: expect.stringContaining(`lost the connection to 127.0.0.1:${cluster.port}/${db.name} and could not get it back within 2 s`),
      hint: expect.stringContaining('start the agent again'),
      exit_code: 6,
    });
    expect(agent.lines.find((l) => l.event === 'agent.stopped')).toMatchObject({ level: 'error' });
  });
});
