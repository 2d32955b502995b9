// The agent's processes under faults: the target server restarts during an
// init (the agent rides it out and the init completes identical), a second
// agent (with and without rights on steep_repl), concurrent installs, and a
// double Ctrl+C during node start. The target runs on a cluster of this
// file's own, since it is restarted.
import { Client } from 'pg';
import { Cluster, startCluster, stopCluster } from '../lib/embedded-cluster';
import { registerNode } from '../lib/sql/registerNode';
import { clusterA, clusterB, createDatabase, createNodeDatabase, dropDatabase, OwnClusters, query, startOwnClusters, withClient } from './support/clusters';
import { contentHashes, createInitPair, InitPair, initStatus, leftovers, sourceWrites, userTables, waitCaughtUp, waitForCopyInProgress } from './support/init-pair';
import { AgentProcess, CliRun, runCli, startCli, stopAllAgents } from './support/processes';
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

  it('stopped (SIGTERM) while the target is away mid-init: exit 0, and the next agent completes the init', async () => {
    const second = await createInitPair({
      tag: 'agent_faults_stop',
      sourceCluster: clusterA(),
      targetCluster,
      sourceId: 'Sourçe "A" zwei',
      targetId: 'Target c',
      rows: 2000,
      slowRows: 3000,
      slowMsPerRow: 2,
    });
    try {
      let agent = await AgentProcess.start(second.target.url, ['--reconnect-timeout', '60']);
      await query(second.target.url, 'SELECT steep_repl.start_init($1, $2)', [second.target.id, second.source.id]);
      await waitForCopyInProgress(second);
      await stopCluster(targetCluster.dataDir, 'fast');
      try {
        await agent.waitForEvent('init.target_lost');
        expect(await agent.stop('SIGTERM')).toBe(0);
        expect(agent.lines.filter((l) => ['agent.unhandled_rejection', 'agent.failed', 'init.failed'].includes(l.event))).toEqual([]);
        expect(agent.lines.find((l) => l.event === 'agent.stopped')).toMatchObject({ level: 'info', reason: 'received SIGTERM' });
        expect(agent.lines.find((l) => l.event === 'job.interrupted')).toMatchObject({ hint: 'it runs again when an agent starts' });
      } finally {
        await startCluster(targetCluster);
      }
      expect((await initStatus(second.target)).state).toBe('copying');
      agent = await AgentProcess.start(second.target.url);
      await agent.waitForEvent('init.completed', 120000);
      expect((await initStatus(second.target)).state).toBe('synchronized');
      await waitCaughtUp(second);
      expect(await contentHashes(second.target.url)).toEqual(await contentHashes(second.source.url));
      expect(await agent.stop()).toBe(0);
    } finally {
      await second.drop();
    }
  });
});

// The session that holds the agent lock of a database, and what a second
// agent could change: the registry, the audit log, the job queue.
const lockHolderSql = `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((classid::bigint << 32) | objid::bigint) = hashtext('steep_repl.agent')::bigint`;
const footprintSql = `SELECT (SELECT json_agg(n ORDER BY node_id) FROM (SELECT node_id, host, port, dbname, init_state FROM steep_repl.nodes) n) AS nodes,
  (SELECT count(*)::int FROM steep_repl.audit_log) AS audit_rows,
  (SELECT count(*)::int FROM graphile_worker._private_jobs) AS jobs,
  (SELECT count(*)::int FROM graphile_worker._private_tasks) AS tasks`;

describe('a second agent', () => {
  let own: OwnClusters<'node'>;
  let cluster: Cluster;
  let db: { name: string; url: string };
  const noRights = 'Agent ohne "Rechte" ü';
  const withRights = 'Zweiter Agent';
  const urlAs = (role: string) => db.url.replace('postgres://postgres@', `postgres://${encodeURIComponent(role)}@`);

  beforeAll(async () => {
    own = await startOwnClusters('test-agent-faults-second', ['node']);
    cluster = own.clusters.node;
    db = await createNodeDatabase(cluster, 'second_agent', { installer: 'cli' });
    await withClient(db.url, (client) =>
      registerNode(client, { node_id: 'Nöde "solo"', host: '127.0.0.1', port: cluster.port, dbname: db.name, user: 'postgres', is_local: true }),
    );
    await query(cluster.url(), `CREATE ROLE "Agent ohne ""Rechte"" ü" LOGIN`);
    // Rights on both schemas, but not pg_read_all_stats: another role's session start is hidden from it.
    await query(cluster.url(), `CREATE ROLE "Zweiter Agent" LOGIN`);
    await query(
      db.url,
      `GRANT USAGE ON SCHEMA steep_repl, graphile_worker TO "Zweiter Agent";
       GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA steep_repl, graphile_worker TO "Zweiter Agent"`,
    );
  });
  afterAll(async () => {
    await stopAllAgents();
    await own?.remove();
  });

  it('as a role without rights while one runs: says another agent runs and what the role lacks, exit 1, nothing changed', async () => {
    const first = await AgentProcess.start(db.url);
    try {
      const [{ pid }] = await query(db.url, lockHolderSql);
      const before = await query(db.url, footprintSql);
      const second = new AgentProcess(urlAs(noRights));
      expect(await second.waitForExit()).toBe(1);
      const failed = second.lines.find((l) => l.event === 'agent.failed');
      expect(failed).toMatchObject({ level: 'error', exit_code: 1 });
      expect(failed!.error).toBe(
        `another steep-repl agent is already running for 127.0.0.1:${cluster.port}/${db.name} (its session: backend pid ${pid}, role postgres, ` +
          `application "steep-repl agent", its client and start time are hidden from role "Agent ohne ""Rechte"" ü", which lacks pg_read_all_stats); ` +
          `besides, role "Agent ohne ""Rechte"" ü" lacks USAGE on schema graphile_worker; USAGE on schema steep_repl; ` +
          `SELECT, INSERT, UPDATE, DELETE on ${(await tableCount(db.url))} table(s): graphile_worker._private_job_queues, graphile_worker._private_jobs, ` +
          `graphile_worker._private_known_crontabs, graphile_worker._private_tasks, graphile_worker.migrations and ${(await tableCount(db.url)) - 5} more, so it could not run one`,
      );
      expect(failed!.hint).toMatch(/leave the other one running, or stop it and run the agent as the role that ran steep-repl install/);
      expect(second.raw.join('\n')).not.toMatch(/toISOString|TypeError/);
      expect(await query(db.url, lockHolderSql)).toEqual([{ pid }]);
      expect(await query(db.url, footprintSql)).toEqual(before);
      expect(first.running).toBe(true);
    } finally {
      await first.stop();
    }
  });

  it('as a role with rights but without pg_read_all_stats while one runs: names what it can see, exit 1', async () => {
    const first = await AgentProcess.start(db.url);
    try {
      const [{ pid }] = await query(db.url, lockHolderSql);
      const before = await query(db.url, footprintSql);
      const second = new AgentProcess(urlAs(withRights));
      expect(await second.waitForExit()).toBe(1);
      expect(second.lines.find((l) => l.event === 'agent.failed')).toMatchObject({
        exit_code: 1,
        error:
          `another steep-repl agent is already running for 127.0.0.1:${cluster.port}/${db.name} (its session: backend pid ${pid}, role postgres, ` +
          `application "steep-repl agent", its client and start time are hidden from role "Zweiter Agent", which lacks pg_read_all_stats)`,
        hint: 'one agent per database runs the jobs; stop the other one first, or leave it running',
      });
      expect(await query(db.url, lockHolderSql)).toEqual([{ pid }]);
      expect(await query(db.url, footprintSql)).toEqual(before);
      expect(first.running).toBe(true);
    } finally {
      await first.stop();
    }
  });

  it('as a role without rights alone: says what the role lacks and what to do, exit 1, nothing changed', async () => {
    const before = await query(db.url, footprintSql);
    const alone = new AgentProcess(urlAs(noRights));
    expect(await alone.waitForExit()).toBe(1);
    const failed = alone.lines.find((l) => l.event === 'agent.failed');
    expect(failed).toMatchObject({ exit_code: 1, hint: expect.stringContaining('run the agent as the role that ran steep-repl install') });
    expect(failed!.error).toMatch(
      new RegExp(`^the agent cannot run jobs in 127\\.0\\.0\\.1:${cluster.port}/${db.name}: role "Agent ohne ""Rechte"" ü" lacks USAGE on schema graphile_worker; USAGE on schema steep_repl; SELECT, INSERT, UPDATE, DELETE on \\d+ table\\(s\\)`),
    );
    expect(await query(db.url, lockHolderSql)).toEqual([]);
    expect(await query(db.url, footprintSql)).toEqual(before);
  });
});

async function tableCount(url: string): Promise<number> {
  const [{ n }] = await query(url, "SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('steep_repl', 'graphile_worker') AND c.relkind IN ('r', 'p')");
  return n;
}

// What install creates, by name (oids change when install re-creates
// functions), and each migration it recorded.
async function installedCatalog(url: string): Promise<Record<string, unknown>> {
  const [row] = await query(
    url,
    `SELECT (SELECT json_agg(n.nspname || '.' || c.relname || ':' || c.relkind::text ORDER BY n.nspname, c.relname)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname IN ('steep_repl', 'graphile_worker', 'graphile_migrate')) AS relations,
            (SELECT json_agg(p.oid::regprocedure::text ORDER BY p.oid::regprocedure::text)
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname IN ('steep_repl', 'graphile_worker')) AS functions,
            (SELECT json_agg(m.filename ORDER BY m.filename) FROM graphile_migrate.migrations m) AS migrations,
            (SELECT json_agg(m.id ORDER BY m.id) FROM graphile_worker.migrations m) AS worker_migrations`,
  );
  return row;
}

describe('concurrent installs', () => {
  const cluster = clusterA();
  const dbs: Array<{ name: string }> = [];
  afterAll(async () => {
    for (const db of dbs) await dropDatabase(cluster, db.name).catch(() => undefined);
  });

  it('three steep-repl install at once into a new database take turns: all exit 0, the schema is complete once', async () => {
    const reference = await createDatabase(cluster, 'install_once');
    const racing = await createDatabase(cluster, 'install_race');
    dbs.push(reference, racing);
    const once = await runCli(['install', '--db', reference.url]);
    expect(once.code).toBe(0);

    // This session holds the install lock as an install would, until all three wait
    // behind it; then they race for it at the same instant.
    const holder = new Client({ connectionString: racing.url });
    await holder.connect();
    let results;
    try {
      await holder.query("SELECT pg_advisory_lock(hashtext('steep_repl.install'))");
      const runs = [1, 2, 3].map(() => startCli(['install', '--db', racing.url]));
      await waitUntil('three installs waiting', () => runs.every((r) => /"install\.waiting"/.test(r.stderr)), 30000);
      await holder.query("SELECT pg_advisory_unlock(hashtext('steep_repl.install'))");
      results = await Promise.all(runs.map((r) => r.result));
    } finally {
      await holder.end();
    }
    for (const result of results) {
      expect(result.stderr).not.toMatch(/Failed to get exclusive lock|error/i);
      expect(result.code).toBe(0);
      expect(result.stdout.trim()).toBe(`steep_repl installed in 127.0.0.1:${cluster.port}/${racing.name}`);
    }
    // The ones that found another install running said so and waited.
    const waited = results.flatMap((r) => r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)))
      .filter((l) => l.event === 'install.waiting');
    expect(waited).toHaveLength(3);
    for (const line of waited) {
      expect(line).toMatchObject({ level: 'info', database: `127.0.0.1:${cluster.port}/${racing.name}` });
      expect(line.message).toMatch(/another steep-repl install is running in this database; waiting for it/);
    }
    const catalog = await installedCatalog(racing.url);
    expect(catalog).toEqual(await installedCatalog(reference.url));
    expect(JSON.stringify(catalog)).toContain('steep_repl.nodes:r');
    // Each migration recorded once.
    expect(new Set(catalog.migrations as string[]).size).toBe((catalog.migrations as string[]).length);
    expect(new Set(catalog.worker_migrations as number[]).size).toBe((catalog.worker_migrations as number[]).length);
  });
});

describe('Ctrl+C twice during node start', () => {
  let pair: InitPair;
  let nodeStart: CliRun | undefined;

  beforeAll(async () => {
    pair = await createInitPair({
      tag: 'double_ctrl_c',
      sourceCluster: clusterA(),
      targetCluster: clusterB(),
      sourceId: 'Quelle "Eins"',
      targetId: "Ziel's ü",
      rows: 2000,
      slowRows: 2500,
      slowMsPerRow: 2,
    });
  });
  afterAll(async () => {
    if (nodeStart && nodeStart.child.exitCode === null && nodeStart.child.signalCode === null) nodeStart.child.kill('SIGKILL');
    await stopAllAgents();
    await pair?.drop();
  });

  it('the second Ctrl+C stops waiting once the cancel is recorded: exit 4, and the agent finishes the cancel', async () => {
    let agent = await AgentProcess.start(pair.target.url);
    const cli = (nodeStart = startCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--db', pair.target.url]));
    await waitForCopyInProgress(pair);
    await waitUntil('the progress bar', () => /copying/.test(cli.stderr));
    // No agent to carry the cancel out: the command would wait for one.
    await agent.stop('SIGKILL');
    cli.child.kill('SIGINT');
    await waitUntil('the cancel recorded', async () => !!(await initStatus(pair.target)).progress?.cancel_requested_at);
    await waitUntil('the first Ctrl+C answered', () => /cancelling the initialization of Ziel's ü\.\.\./.test(cli.stderr));
    cli.child.kill('SIGINT');
    const { code, stderr } = await cli.result;
    expect(code).toBe(4);
    expect(stderr).toContain(
      `the cancel is recorded; the agent finishes it and removes what the init created. Watch it: steep-repl node progress 'Ziel'\\''s ü'`,
    );
    // It said the truth: the next agent finishes the cancel.
    agent = await AgentProcess.start(pair.target.url);
    await agent.waitForEvent('init.cancelled', 60000);
    await waitUntil('the node back to uninitialized', async () => (await initStatus(pair.target)).state === 'uninitialized');
    expect(await leftovers(pair)).toEqual({ subscriptions: [], slots: [], publications: [] });
    for (const table of userTables) expect(await query(pair.target.url, `SELECT count(*)::int AS n FROM ${table}`)).toEqual([{ n: 0 }]);
    await agent.stop();
  });

  it('Ctrl+C twice in a row while the agent cancels: exit 4, never 130', async () => {
    const agent = await AgentProcess.start(pair.target.url);
    const cli = (nodeStart = startCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--db', pair.target.url]));
    await waitForCopyInProgress(pair);
    await waitUntil('the progress bar', () => /copying/.test(cli.stderr));
    cli.child.kill('SIGINT');
    await waitUntil('the first Ctrl+C answered', () => /cancelling the initialization/.test(cli.stderr));
    cli.child.kill('SIGINT');
    const { code, stderr } = await cli.result;
    expect(code).toBe(4);
    // Whichever came first: the command stopped waiting, or the cancel had completed.
    expect(stderr).toMatch(/the cancel is recorded; the agent finishes it|cancelled; nothing it created is left/);
    await waitUntil('the node back to uninitialized', async () => (await initStatus(pair.target)).state === 'uninitialized');
    expect(await leftovers(pair)).toEqual({ subscriptions: [], slots: [], publications: [] });
    await agent.stop();
  });

  it('a Ctrl+C after the cancel completed does not change the exit code (4)', async () => {
    const agent = await AgentProcess.start(pair.target.url);
    const cli = (nodeStart = startCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--db', pair.target.url]));
    await waitForCopyInProgress(pair);
    await waitUntil('the progress bar', () => /copying/.test(cli.stderr));
    cli.child.kill('SIGINT');
    await waitUntil('the node back to uninitialized', async () => (await initStatus(pair.target)).state === 'uninitialized', 30000, 20);
    // Late and impatient: Ctrl+C every few ms while the command prints its last
    // lines and exits (Node used to die of one in its teardown: 130).
    const hammer = setInterval(() => cli.child.exitCode === null && cli.child.signalCode === null && cli.child.kill('SIGINT'), 1);
    const { code, stderr } = await cli.result.finally(() => clearInterval(hammer));
    expect(cli.child.signalCode).toBeNull();
    expect(code).toBe(4);
    expect(stderr).toMatch(/cancelled; nothing it created is left/);
    await agent.stop();
  });
});
