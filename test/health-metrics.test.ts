// steep-repl agent --metrics-port (issue 15): real HTTP scrapes of /metrics
// from the agents of a real pair, during a direct init (throttled so it is
// seen copying) and after it, read as Prometheus reads the text format; node
// ids with quotes, a backslash and unicode in the labels. A bad port is a
// clear error, exit 2, and no agent starts.
import { escapeIdentifier } from 'pg';
import { getInitStatus } from '../lib/sql/getInitStatus';
import { clusterA, clusterB, query, withClient } from './support/clusters';
import { createInitPair, InitPair } from './support/init-pair';
import { freePort, holdPort, httpGet, Metrics, sample, scrape, series } from './support/metrics';
import { AgentProcess, CliResult, runCli, startCli, stopAllAgents } from './support/processes';
import { waitUntil } from './support/wait';

jest.setTimeout(150000);

// prom-client escapes \ and " in label values; the ids need both
const sourceId = 'Metrics "Src" \\ ü';
const targetId = 'metrics tgt "b"';
const version: string = require('../package.json').version;

describe('agent /metrics', () => {
  let pair: InitPair;
  let sub: string;
  let sourcePort: number;
  let targetPort: number;
  let pg18 = false;
  let targetAgent: AgentProcess;

  beforeAll(async () => {
    pair = await createInitPair({ tag: 'health_metrics', sourceCluster: clusterA(), targetCluster: clusterB(), sourceId, targetId, rows: 2000 });
    sub = pair.replicationName;
    pg18 = Number((await query(pair.target.url, 'SHOW server_version_num'))[0].server_version_num) >= 180000;
    for (const db of [pair.source, pair.target]) await query(db.url, 'UPDATE steep_repl.health_settings SET watch_interval_seconds = 1');
  });
  afterAll(async () => {
    await stopAllAgents();
    await pair?.drop();
  });

  // An agent run expected to be refused: killed if it is not, so a wrong
  // acceptance fails the test instead of hanging it.
  async function refusedAgent(args: string[]): Promise<CliResult> {
    const run = startCli(['agent', '--db', pair.target.url, ...args], { STEEP_REPL_LOG_LEVEL: 'info' });
    const timer = setTimeout(() => run.child.kill('SIGKILL'), 20000);
    try {
      return await run.result;
    } finally {
      clearTimeout(timer);
    }
  }

  it('refuses --metrics-port 0, 70000, a port in use and an address not of this host: exit 2, a clear message, no agent started', async () => {
    for (const port of ['0', '70000']) {
      const result = await refusedAgent(['--metrics-port', port]);
      expect({ port, code: result.code }).toEqual({ port, code: 2 });
      expect(result.stderr).toMatch(/metrics-port/);
      // the message names the range and the value
      expect(result.stderr).toContain(`expected a port number from 1 to 65535, not "${port}"`);
      expect(result.stdout + result.stderr).not.toMatch(/agent\.started/);
    }
    const held = await holdPort();
    try {
      const result = await refusedAgent(['--metrics-port', String(held.port)]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`cannot serve metrics on 127.0.0.1:${held.port}`);
      expect(result.stderr).toContain(`cannot serve metrics on 127.0.0.1:${held.port}: the port is in use`);
      expect(result.stdout + result.stderr).not.toMatch(/agent\.started/);
    } finally {
      await held.release();
    }
    // TEST-NET-1: no interface of this host has it
    const port = await freePort();
    const foreign = await refusedAgent(['--metrics-port', String(port), '--metrics-host', '192.0.2.1']);
    expect(foreign.code).toBe(2);
    expect(foreign.stderr).toContain(`cannot serve metrics on 192.0.2.1:${port}: the host is not an address of this machine`);
    expect(foreign.stdout + foreign.stderr).not.toMatch(/agent\.started/);
    // a host without a port serves nothing: refused, not ignored
    const hostOnly = await refusedAgent(['--metrics-host', '127.0.0.1']);
    expect(hostOnly.code).toBe(2);
    expect(hostOnly.stderr).toMatch(/--metrics-port/);
    expect(hostOnly.stdout + hostOnly.stderr).not.toMatch(/agent\.started/);

    // none of them heartbeat or left a session behind
    const [node] = await query(pair.target.url, 'SELECT last_seen FROM steep_repl.nodes WHERE node_id = $1', [targetId]);
    expect(node.last_seen).toBeNull();
    const sessions = await query(pair.target.url, "SELECT application_name FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'steep-repl agent%'");
    expect(sessions).toEqual([]);
  });

  it('serves /metrics while a direct init copies: agent up, its info, the init state copying and a percent that rises', async () => {
    [sourcePort, targetPort] = [await freePort(), await freePort()];
    await AgentProcess.start(pair.source.url, ['--metrics-port', String(sourcePort)]);
    // bytes per second per copy worker: the copy lasts seconds, scraped while it runs
    targetAgent = await AgentProcess.start(pair.target.url, ['--metrics-port', String(targetPort), '--metrics-host', '127.0.0.1'], { STEEP_REPL_COPY_MAX_RATE: '300000' });

    const res = await httpGet(`http://127.0.0.1:${targetPort}/metrics`);
    expect(res.status).toBe(200);
    expect(res.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect((await httpGet(`http://127.0.0.1:${targetPort}/other`)).status).toBe(404);
    let m = await scrape(targetPort);
    expect(sample(m, 'steep_repl_agent_up')).toBe(1);
    // the node's series come with the watch's first round
    m = await waitUntil('the first round in /metrics', async () => {
      const now = await scrape(targetPort);
      return sample(now, 'steep_repl_agent_info', { node: targetId }) !== undefined ? now : undefined;
    }, 10000, 100);
    expect(sample(m, 'steep_repl_agent_info', { node: targetId })).toBe(1);
    expect(sample(m, 'steep_repl_init_state', { node: targetId, state: 'uninitialized' })).toBe(1);
    expect(series(m, 'steep_repl_agent_info')[0].labels.version).toBe(version);
    // the id escaped in the text as the format wants it: \" for a quote
    expect(m.text).toContain('node="metrics tgt \\"b\\""');
    // standard process metrics next to the agent's own
    expect(series(m, 'process_cpu_user_seconds_total')).toHaveLength(1);

    const started = await runCli(['node', 'start', targetId, '--from', sourceId, '--method', 'direct', '--no-wait', '--db', pair.target.url]);
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);
    const copying = await waitUntil('init_state copying with a percent in /metrics', async () => {
      const now = await scrape(targetPort);
      const percent = sample(now, 'steep_repl_init_percent', { node: targetId, method: 'direct' });
      return sample(now, 'steep_repl_init_state', { node: targetId, state: 'copying' }) === 1 && percent !== undefined ? now : undefined;
    }, 30000, 200);
    // exactly one state is the current one
    expect(series(copying, 'steep_repl_init_state', { node: targetId }).filter((s) => s.value === 1).map((s) => s.labels.state)).toEqual(['copying']);
    const first = sample(copying, 'steep_repl_init_percent', { node: targetId, method: 'direct' })!;
    expect(first).toBeGreaterThanOrEqual(0);
    expect(first).toBeLessThan(100);
    expect(sample(copying, 'steep_repl_agent_up')).toBe(1);
    // the copy goes on: a later scrape, still copying, shows more done
    m = await waitUntil('a higher init percent while copying', async () => {
      const now = await scrape(targetPort);
      const percent = sample(now, 'steep_repl_init_percent', { node: targetId, method: 'direct' });
      return sample(now, 'steep_repl_init_state', { node: targetId, state: 'copying' }) === 1 && percent !== undefined && percent > first ? now : undefined;
    }, 30000, 200);
    expect(sample(m, 'steep_repl_init_rows_per_second', { node: targetId })).toBeGreaterThanOrEqual(0);

    await waitUntil('the init to synchronize', async () => {
      const s = await withClient(pair.target.url, (client) => getInitStatus(client, targetId));
      if (s.state === 'failed') throw new Error(`init failed: ${JSON.stringify(s)}`);
      return s.state === 'synchronized';
    }, 90000, 250);
  });

  it('after the init: subscription lag, errors and the slot retained bytes, with plausible values and the ids as labels', async () => {
    const subLabels = { node: targetId, subscription: sub, source_node: sourceId };
    const m: Metrics = await waitUntil('the subscription in /metrics after the init', async () => {
      const now = await scrape(targetPort);
      return sample(now, 'steep_repl_init_state', { node: targetId, state: 'synchronized' }) === 1 &&
        sample(now, 'steep_repl_subscription_lag_bytes', subLabels) !== undefined &&
        sample(now, 'steep_repl_subscription_lag_seconds', subLabels) !== undefined
        ? now
        : undefined;
    }, 20000, 200);
    expect(series(m, 'steep_repl_init_state', { node: targetId }).filter((s) => s.value === 1).map((s) => s.labels.state)).toEqual(['synchronized']);
    const lagBytes = sample(m, 'steep_repl_subscription_lag_bytes', subLabels)!;
    expect(lagBytes).toBeGreaterThanOrEqual(0);
    expect(lagBytes).toBeLessThan(16 * 1024 * 1024);
    const lagSeconds = sample(m, 'steep_repl_subscription_lag_seconds', subLabels)!;
    expect(lagSeconds).toBeGreaterThanOrEqual(0);
    expect(lagSeconds).toBeLessThan(60);
    // 0 or 1: whether lag_seconds is only a lower bound (samples not reaching back)
    expect([0, 1]).toContain(sample(m, 'steep_repl_subscription_lag_seconds_at_least', subLabels));
    expect(sample(m, 'steep_repl_subscription_enabled', subLabels)).toBe(1);
    expect(sample(m, 'steep_repl_subscription_worker_running', subLabels)).toBe(1);
    expect(sample(m, 'steep_repl_subscription_apply_errors_total', subLabels)).toBe(0);
    expect(sample(m, 'steep_repl_subscription_sync_errors_total', subLabels)).toBe(0);
    expect(m.types.steep_repl_subscription_apply_errors_total).toBe('counter');
    const messageAge = sample(m, 'steep_repl_subscription_last_message_age_seconds', subLabels)!;
    expect(messageAge).toBeGreaterThanOrEqual(0);
    expect(messageAge).toBeLessThan(120);
    if (pg18) expect(sample(m, 'steep_repl_subscription_conflicts_total', { ...subLabels, type: 'insert_exists' })).toBe(0);
    else expect(series(m, 'steep_repl_subscription_conflicts_total')).toEqual([]);
    expect(sample(m, 'steep_repl_node_health', { node: targetId, health: 'healthy' })).toBe(1);
    expect(sample(m, 'steep_repl_replication_degraded', { node: targetId, kind: 'subscription', name: sub })).toBe(0);
    const observedAt = sample(m, 'steep_repl_observation_timestamp_seconds', { node: targetId })!;
    expect(Math.abs(Date.now() / 1000 - observedAt)).toBeLessThan(10);
    // the source id as written: a backslash doubled, quotes escaped
    expect(m.text).toContain('source_node="Metrics \\"Src\\" \\\\ ü"');

    // the source agent serves its slot
    const slotLabels = { node: sourceId, slot: sub, peer_node: targetId };
    const s: Metrics = await waitUntil('the slot in the source agent\'s /metrics', async () => {
      const now = await scrape(sourcePort);
      // in use once the source's round follows the subscription's (re)start at the init's end
      return sample(now, 'steep_repl_slot_retained_bytes', slotLabels) !== undefined && sample(now, 'steep_repl_slot_active', slotLabels) === 1 ? now : undefined;
    }, 20000, 200);
    const retained = sample(s, 'steep_repl_slot_retained_bytes', slotLabels)!;
    expect(retained).toBeGreaterThanOrEqual(0);
    expect(retained).toBeLessThan(1024 ** 3);
    expect(sample(s, 'steep_repl_slot_active', slotLabels)).toBe(1);
    expect(sample(s, 'steep_repl_slot_wal_status', { ...slotLabels, status: 'reserved' })).toBe(1);
    expect(sample(s, 'steep_repl_agent_up')).toBe(1);
    expect(sample(s, 'steep_repl_node_health', { node: sourceId, health: 'healthy' })).toBe(1);
    expect(series(s, 'steep_repl_subscription_lag_bytes')).toEqual([]);
    expect(s.text).toContain('node="Metrics \\"Src\\" \\\\ ü"');
  });

  it('a key written on both nodes: the apply error and conflict counters follow the server, the node and the subscription degraded', async () => {
    const subLabels = { node: targetId, subscription: sub, source_node: sourceId };
    await query(pair.target.url, "INSERT INTO public.accounts VALUES (900001, 1, 'on B')");
    await query(pair.source.url, "INSERT INTO public.accounts VALUES (900001, 2, 'on A')");
    const m: Metrics = await waitUntil('apply errors and the degraded node in /metrics', async () => {
      const now = await scrape(targetPort);
      return (sample(now, 'steep_repl_subscription_apply_errors_total', subLabels) ?? 0) >= 1 &&
        sample(now, 'steep_repl_node_health', { node: targetId, health: 'degraded' }) === 1
        ? now
        : undefined;
    }, 20000, 200);
    const [stats] = await query(pair.target.url, 'SELECT apply_error_count::int AS n FROM pg_stat_subscription_stats WHERE subname = $1', [sub]);
    // mirrored from the server, at most one round behind
    expect(sample(m, 'steep_repl_subscription_apply_errors_total', subLabels)).toBeLessThanOrEqual(stats.n);
    expect(sample(m, 'steep_repl_replication_degraded', { node: targetId, kind: 'subscription', name: sub })).toBe(1);
    expect(series(m, 'steep_repl_node_health', { node: targetId }).filter((x) => x.value === 1).map((x) => x.labels.health)).toEqual(['degraded']);
    if (pg18) expect(sample(m, 'steep_repl_subscription_conflicts_total', { ...subLabels, type: 'insert_exists' })).toBeGreaterThanOrEqual(1);
    // the DBA resolves it: the worker goes on
    await query(pair.target.url, 'DELETE FROM public.accounts WHERE id = 900001');
  });

  it('a subscription dropped: its series go from the target agent, its slot\'s from the source agent', async () => {
    const subLabels = { node: targetId, subscription: sub, source_node: sourceId };
    const slotLabels = { node: sourceId, slot: sub, peer_node: targetId };
    const before = await scrape(targetPort);
    expect(sample(before, 'steep_repl_subscription_enabled', subLabels)).toBe(1);
    expect(series(await scrape(sourcePort), 'steep_repl_slot_active', slotLabels)).toHaveLength(1);
    // every series that names the subscription or its slot
    const named = (m: Metrics) =>
      m.samples.filter((x) => x.labels.subscription === sub || x.labels.slot === sub || (x.name === 'steep_repl_replication_degraded' && x.labels.name === sub));
    expect(named(before).map((x) => x.name)).toEqual(expect.arrayContaining(['steep_repl_subscription_lag_bytes', 'steep_repl_replication_degraded']));

    // DROP SUBSCRIPTION drops its slot on the source too
    await query(pair.target.url, `DROP SUBSCRIPTION ${escapeIdentifier(sub)}`);
    expect(await query(pair.source.url, 'SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [sub])).toEqual([]);
    const target = await waitUntil('no series of the dropped subscription', async () => {
      const now = await scrape(targetPort);
      return named(now).length === 0 ? now : undefined;
    }, 15000, 200);
    // the node's own series stay, healthy again
    expect(sample(target, 'steep_repl_agent_info', { node: targetId })).toBe(1);
    expect(sample(target, 'steep_repl_node_health', { node: targetId, health: 'healthy' })).toBe(1);
    expect(series(target, 'steep_repl_subscription_lag_bytes')).toEqual([]);
    // the reverse slot the init prepared on B is another object: still there
    expect(series(target, 'steep_repl_slot_retained_bytes', { node: targetId })).toHaveLength(1);

    const source = await waitUntil("no series of the dropped slot in the source agent's /metrics", async () => {
      const now = await scrape(sourcePort);
      return named(now).length === 0 ? now : undefined;
    }, 15000, 200);
    expect(series(source, 'steep_repl_slot_retained_bytes')).toEqual([]);
    expect(series(source, 'steep_repl_slot_wal_status')).toEqual([]);
    expect(sample(source, 'steep_repl_agent_up')).toBe(1);
  });

  it('a stopped agent serves no more: the port is closed with it', async () => {
    expect(await targetAgent.stop('SIGTERM')).toBe(0);
    await expect(httpGet(`http://127.0.0.1:${targetPort}/metrics`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    // the source agent still serves its own
    expect(sample(await scrape(sourcePort), 'steep_repl_agent_up')).toBe(1);
  });
});
