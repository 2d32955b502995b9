// The agent as a real child process against a real server: its log, its
// heartbeat, one agent per database, signals, jobs that outlive agents, and
// per-job cancel.
import { Client } from 'pg';
import { freePort } from '../lib/embedded-cluster';
import { registerNode } from '../lib/sql/registerNode';
import { clusterA, createDatabase, createNodeDatabase, dropDatabase, query, withClient } from './support/clusters';
import { AgentProcess, runCli, stopAllAgents } from './support/processes';
import { SilentServer, silentServer } from './support/silent-server';
import { waitUntil } from './support/wait';

const cluster = clusterA();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('steep-repl agent', () => {
  let db: { name: string; url: string };
  let silent: SilentServer;
  const agentSessions = async () =>
    (
      await query(
        db.url,
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
      )
    )[0].n as number;
  const namedSessions = async () =>
    (
      await query(
        db.url,
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'steep-repl%'",
      )
    )[0].n as number;
  const jobs = () =>
    query(db.url, 'SELECT id, attempts, locked_by, last_error, payload FROM graphile_worker._private_jobs ORDER BY id');

  beforeAll(async () => {
    db = await createNodeDatabase(cluster, 'agent');
    silent = await silentServer();
    await withClient(db.url, async (client) => {
      await registerNode(client, { node_id: 'Agent "local" ノード', host: '127.0.0.1', port: cluster.port, dbname: db.name, is_local: true });
      await registerNode(client, { node_id: 'peer_up', host: '127.0.0.1', port: cluster.port, dbname: 'postgres', user: 'postgres' });
      // a database each: one address is one node
      for (const id of ['peer_silent', 'peer_x', 'peer_y']) await registerNode(client, { node_id: id, host: '127.0.0.1', port: silent.port, dbname: `app_${id}` });
    });
  });
  afterAll(async () => {
    await stopAllAgents();
    await silent?.close();
    await dropDatabase(cluster, db.name);
  });

  describe('one running agent', () => {
    let agent: AgentProcess;
    afterAll(async () => {
      await agent?.stop('SIGKILL');
    });

    it('logs agent.started and heartbeats the local node', async () => {
      await query(db.url, "UPDATE steep_repl.nodes SET status = 'unknown', last_seen = NULL WHERE is_local");
      agent = new AgentProcess(db.url, ['--heartbeat-interval', '1']);
      const started = await agent.waitForEvent('agent.started');
      expect(started).toMatchObject({
        level: 'info',
        database: `127.0.0.1:${cluster.port}/${db.name}`,
        node_id: 'Agent "local" ノード',
        heartbeat_ms: 1000,
        tasks: expect.arrayContaining(['probe_node']),
      });
      const first = await waitUntil('a first heartbeat', async () => {
        const [row] = await query(db.url, 'SELECT status, last_seen FROM steep_repl.nodes WHERE is_local');
        return row.last_seen ? row : undefined;
      }, 10000);
      expect(first.status).toBe('healthy');
      const later = await waitUntil('a later heartbeat', async () => {
        const [row] = await query(db.url, 'SELECT last_seen FROM steep_repl.nodes WHERE is_local');
        return row.last_seen > first.last_seen ? row : undefined;
      }, 5000);
      expect(later.last_seen.getTime() - first.last_seen.getTime()).toBeGreaterThanOrEqual(900);
      expect(await namedSessions()).toBeGreaterThanOrEqual(3);
    });

    it('refuses a second agent on the same database, naming the first, while the first keeps running', async () => {
      const second = new AgentProcess(db.url);
      expect(await second.waitForExit()).toBe(1);
      const output = second.raw.join('\n');
      expect(output).toMatch(new RegExp(`another steep-repl agent is already running for 127\\.0\\.0\\.1:${cluster.port}/${db.name} \\(its session: backend pid \\d+`));
      expect(second.lines.find((l) => l.event === 'agent.failed')).toMatchObject({ level: 'error', exit_code: 1 });
      const [before] = await query(db.url, 'SELECT last_seen FROM steep_repl.nodes WHERE is_local');
      await waitUntil('the first agent to heartbeat again', async () => {
        const [row] = await query(db.url, 'SELECT last_seen FROM steep_repl.nodes WHERE is_local');
        return row.last_seen > before.last_seen;
      }, 10000);
      expect(agent.running).toBe(true);
    });

    it('logs a failing heartbeat and keeps running', async () => {
      await query(db.url, 'ALTER FUNCTION steep_repl.heartbeat() RENAME TO heartbeat_away');
      try {
        expect(await agent.waitForEvent('agent.heartbeat_failed', 5000)).toMatchObject({
          level: 'warn',
          error: expect.stringContaining('steep_repl.heartbeat() does not exist'),
        });
      } finally {
        await query(db.url, 'ALTER FUNCTION steep_repl.heartbeat_away() RENAME TO heartbeat');
      }
      const [before] = await query(db.url, 'SELECT last_seen FROM steep_repl.nodes WHERE is_local');
      await waitUntil('heartbeats to resume', async () => {
        const [row] = await query(db.url, 'SELECT last_seen FROM steep_repl.nodes WHERE is_local');
        return row.last_seen > before.last_seen;
      }, 10000);
      expect(agent.running).toBe(true);
    });

    it('writes one JSON object with ts, level and event per stdout line', () => {
      expect(agent.raw.length).toBeGreaterThan(0);
      for (const line of agent.raw) {
        const parsed = JSON.parse(line);
        expect(typeof parsed.ts).toBe('string');
        expect(Number.isNaN(Date.parse(parsed.ts))).toBe(false);
        expect(['debug', 'info', 'warn', 'error']).toContain(parsed.level);
        expect(parsed.event).toMatch(/^[a-z_]+\.[a-z_]+$/);
      }
    });

    it('stops on SIGTERM: exit 0, agent.stopped, no session left', async () => {
      expect(await agentSessions()).toBeGreaterThan(0);
      expect(await agent.stop('SIGTERM')).toBe(0);
      expect(agent.lines.at(-1)).toMatchObject({ event: 'agent.stopped', level: 'info', reason: 'received SIGTERM' });
      await waitUntil('the agent sessions to end', async () => (await agentSessions()) === 0, 3000);
      expect(await namedSessions()).toBe(0);
    });
  });

  describe('agents one at a time', () => {
    afterEach(async () => {
      await stopAllAgents();
    });

    it('stops on SIGINT: exit 0, agent.stopped, no session left', async () => {
      const agent = new AgentProcess(db.url);
      await agent.waitForEvent('agent.started');
      expect(await agentSessions()).toBeGreaterThan(0);
      expect(await agent.stop('SIGINT')).toBe(0);
      expect(agent.lines.at(-1)).toMatchObject({ event: 'agent.stopped', reason: 'received SIGINT' });
      await waitUntil('the agent sessions to end', async () => (await agentSessions()) === 0, 3000);
    });

    it('runs jobs that were enqueued while no agent ran', async () => {
      await query(db.url, "UPDATE steep_repl.nodes SET status = 'unknown', last_seen = NULL WHERE node_id = 'peer_up'");
      const [{ id }] = await query(db.url, `SELECT steep_repl.enqueue('probe_node', '{"node_id": "peer_up"}') AS id`);
      expect((await jobs()).map((j) => j.id)).toEqual([id]);
      const agent = new AgentProcess(db.url);
      await agent.waitFor((l) => l.event === 'job.completed' && String(l.job_id) === String(id));
      expect(agent.lines.find((l) => l.event === 'node.probed')).toMatchObject({ node_id: 'peer_up', status: 'healthy' });
      const [node] = await query(db.url, "SELECT status, last_seen FROM steep_repl.nodes WHERE node_id = 'peer_up'");
      expect(node.status).toBe('healthy');
      expect(node.last_seen).not.toBeNull();
      // graphile-worker emits job:success (our job.completed) before it deletes the row
      await waitUntil('the completed job to leave the queue', async () => (await jobs()).length === 0, 10000);
      expect(await agent.stop()).toBe(0);
    });

    it('runs a job again after its agent was killed (SIGKILL) mid-job', async () => {
      const [{ id }] = await query(db.url, `SELECT steep_repl.enqueue('probe_node', '{"node_id": "peer_silent"}') AS id`);
      const accepted = silent.connections();
      const first = new AgentProcess(db.url, [], { STEEP_REPL_CONNECT_TIMEOUT_MS: '60000' });
      await first.waitFor((l) => l.event === 'job.started' && String(l.job_id) === String(id));
      await waitUntil('the probe to reach the silent node', async () => silent.connections() > accepted, 10000);
      await first.stop('SIGKILL');
      const [orphan] = await jobs();
      expect(orphan).toMatchObject({ attempts: 1 });
      expect(orphan.locked_by).not.toBeNull();

      // The next agent frees the dead agent's job and runs it; the node stays
      // silent, so this time the probe ends on a short connect timeout.
      const second = new AgentProcess(db.url, [], { STEEP_REPL_CONNECT_TIMEOUT_MS: '300' });
      expect(await second.waitForEvent('agent.started')).toMatchObject({ unlocked_stale_jobs: 1 });
      expect(await second.waitFor((l) => l.event === 'job.started' && String(l.job_id) === String(id))).toMatchObject({
        attempt: 2,
      });
      await second.waitFor((l) => l.event === 'job.completed' && String(l.job_id) === String(id));
      expect(second.lines.find((l) => l.event === 'node.probed')).toMatchObject({
        node_id: 'peer_silent',
        status: 'unreachable',
        error: expect.stringContaining(`127.0.0.1:${silent.port}/app_peer_silent: timeout expired`),
      });
      // graphile-worker emits job:success (our job.completed) before it deletes the row
      await waitUntil('the completed job to leave the queue', async () => (await jobs()).length === 0, 10000);
      expect((await query(db.url, "SELECT status FROM steep_repl.nodes WHERE node_id = 'peer_silent'"))[0].status).toBe(
        'unreachable',
      );
      expect(await second.stop()).toBe(0);
    });

    it('cancels one running job within a second while another keeps running', async () => {
      const agent = new AgentProcess(db.url, [], { STEEP_REPL_CONNECT_TIMEOUT_MS: '60000' });
      await agent.waitForEvent('agent.started');
      const [{ x }] = await query(db.url, `SELECT steep_repl.enqueue('probe_node', '{"node_id": "peer_x"}') AS x`);
      const [{ y }] = await query(db.url, `SELECT steep_repl.enqueue('probe_node', '{"node_id": "peer_y"}') AS y`);
      for (const id of [x, y]) await agent.waitFor((l) => l.event === 'job.started' && String(l.job_id) === String(id));

      const requester = new Client({ connectionString: db.url });
      await requester.connect();
      const requested = Date.now();
      try {
        await requester.query("SELECT steep_repl.request_job_cancel('peer_x')");
      } finally {
        await requester.end();
      }
      const cancelled = await agent.waitForEvent('node.probe_cancelled');
      // The probe would hang for its 60 s connect timeout without the NOTIFY.
      expect(Date.now() - requested).toBeLessThan(10000);
      expect(cancelled).toMatchObject({ node_id: 'peer_x', job_id: String(x) });
      await agent.waitFor((l) => l.event === 'job.completed' && String(l.job_id) === String(x));
      expect(agent.lines.find((l) => l.event === 'agent.cancel_requested')).toMatchObject({
        node_id: 'peer_x',
        aborted_jobs: [String(x)],
      });
      const [audit] = await query(
        db.url,
        "SELECT node_id, details FROM steep_repl.audit_log WHERE event = 'node.probe_cancelled'",
      );
      expect(audit).toMatchObject({ node_id: 'peer_x', details: { job_id: String(x) } });

      // peer_y's probe is still waiting on its silent node.
      await sleep(300);
      const running = await jobs();
      expect(running.map((j) => String(j.id))).toEqual([String(y)]);
      expect(running[0].locked_by).not.toBeNull();
      expect(agent.lines.some((l) => l.event === 'node.probed' || (l.event === 'job.completed' && String(l.job_id) === String(y)))).toBe(false);

      // A shutdown aborts it (not graphile-worker's 5 s grace running out)
      // and leaves it queued for the next agent.
      expect(await agent.stop('SIGTERM')).toBe(0);
      const [left] = await jobs();
      expect(left).toMatchObject({ attempts: 1, locked_by: null });
      expect(left.last_error).toMatch(/the agent is shutting down/);
      expect(agent.lines.find((l) => l.event === 'job.interrupted')).toMatchObject({ level: 'info', job_id: String(y) });
      expect(agent.lines.filter((l) => l.event === 'job.failed')).toEqual([]);
      await query(db.url, 'DELETE FROM graphile_worker._private_jobs');
    });

    it('refuses a database without steep_repl, naming it and the install command (exit 1)', async () => {
      const plain = await createDatabase(cluster, 'agent_plain');
      try {
        const agent = new AgentProcess(plain.url);
        expect(await agent.waitForExit()).toBe(1);
        expect(agent.lines.find((l) => l.event === 'agent.failed')).toMatchObject({
          error: `steep_repl is not installed in 127.0.0.1:${cluster.port}/${plain.name}`,
          hint: expect.stringContaining('steep-repl install --db'),
          exit_code: 1,
        });
      } finally {
        await dropDatabase(cluster, plain.name);
      }
    });

    it('refuses out-of-range options with exit 2 before touching the database', async () => {
      for (const args of [['--heartbeat-interval', '0'], ['--reconnect-timeout', '-1'], ['--concurrency', '0'], ['--concurrency', 'many']]) {
        const result = await runCli(['agent', ...args, '--db', db.url]);
        expect({ args, code: result.code }).toEqual({ args, code: 2 });
        expect(result.stderr).toMatch(/Expected an integer/);
      }
      expect(await namedSessions()).toBe(0);
    });

    it('exits 6 when its database cannot be reached', async () => {
      const port = await freePort();
      const agent = new AgentProcess(`postgres://postgres@127.0.0.1:${port}/app`);
      expect(await agent.waitForExit()).toBe(6);
      expect(agent.lines.find((l) => l.event === 'agent.failed')).toMatchObject({
        error: expect.stringContaining(`cannot connect to 127.0.0.1:${port}/app`),
        exit_code: 6,
      });
    });
  });
});
