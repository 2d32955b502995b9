// The watch's view of a subscription's source (issue 15, round 2): the
// target's agent asks the source node at its registry address for its
// position while the subscription streams from the real server by its own
// conninfo. Here that address is a TCP forwarder that can drop everything
// (test/support/tcp-proxy.ts: the network going silent, packets and FINs
// lost, as for a host that vanished): the heartbeat goes on, the source is
// unreachable after two rounds in a row with an error that says where, a
// SIGTERM ends the agent promptly, and the registry pointed back at the
// real server recovers it; one event each way. Last, the subscription's
// slot dropped on the source: source_slot_missing. First, the watch itself:
// never observed is degraded, a fresh agent has observed when it says started.
import { escapeIdentifier } from 'pg';
import { clusterA, clusterB, query } from './support/clusters';
import { createInitPair, InitPair } from './support/init-pair';
import { AgentProcess, runCli, stopAllAgents } from './support/processes';
import { TcpProxy, tcpProxy } from './support/tcp-proxy';
import { waitUntil } from './support/wait';

jest.setTimeout(120000);

// ids no other file uses: the slot's name comes from them and slots are cluster-wide
const sourceId = 'Fern "Quelle" ø';
const targetId = 'fern ziel from';
// given to the target's agent: it must appear in no reason, event or log line
const password = 'hunter2-fern-quelle';
// a SIGTERM must not wait for a silent source (connect timeout 3 s, query timeout 5 s)
const promptExitMs = 3000;

interface SubRow {
  status: string;
  problems: string[];
  reason: string | null;
  source_error: string | null;
  source_lsn: string | null;
  lag_bytes: string | null;
  observed_at: Date;
}

describe("the watch's probe of a source that goes silent", () => {
  let pair: InitPair;
  let proxy: TcpProxy;
  let agent: AgentProcess;
  let sub: string;
  let subSql: string;
  let sourceSql: string;
  let targetSql: string;
  // where the probe asks once the registry points at the forwarder, as the agent names it
  let proxyWhere: string;
  // the agents this file started, for the password check at the end
  const agents: AgentProcess[] = [];
  let lastOverview: unknown;

  const startTargetAgent = async () => {
    const started = await AgentProcess.start(pair.target.url, ['--heartbeat-interval', '1'], { PGPASSWORD: password });
    agents.push(started);
    return started;
  };

  beforeAll(async () => {
    pair = await createInitPair({ tag: 'health_sources', sourceCluster: clusterA(), targetCluster: clusterB(), sourceId, targetId, rows: 1000 });
    sub = pair.replicationName;
    [{ subSql, sourceSql, targetSql }] = await query(pair.target.url, "SELECT format('%I', $1::text) AS \"subSql\", quote_ident($2) AS \"sourceSql\", quote_ident($3) AS \"targetSql\"", [
      sub,
      sourceId,
      targetId,
    ]);
    for (const db of [pair.source, pair.target]) await query(db.url, 'UPDATE steep_repl.health_settings SET watch_interval_seconds = 1');
    proxy = await tcpProxy(pair.source.cluster.host, pair.source.cluster.port);
    proxyWhere = `127.0.0.1:${proxy.port}/${pair.source.name}`;
    const sourceAgent = await AgentProcess.start(pair.source.url);
    agent = await startTargetAgent();
    const started = await runCli(['node', 'start', targetId, '--from', sourceId, '--db', pair.target.url]);
    if (started.code !== 0) throw new Error(`node start exited ${started.code}: ${started.stderr.slice(0, 2000)}`);
    // the source's own agent plays no part in what the target's watch sees
    await sourceAgent.stop();
    // the synchronized pair as the watch sees it once the init is over
    await waitUntil('the target healthy after the init', async () => {
      const [node] = await query(pair.target.url, 'SELECT health, health_reason, replication FROM steep_repl.node_overview WHERE is_local');
      if (node.health === 'healthy') return true;
      lastOverview = node;
      return false;
    }, 15000).catch((err) => {
      throw new Error(`${err.message}: ${JSON.stringify(lastOverview)}`);
    });
  });
  afterAll(async () => {
    await stopAllAgents();
    await proxy?.close();
    await pair?.drop();
  });

  const subRow = async (): Promise<SubRow | undefined> =>
    (
      await query<SubRow>(
        pair.target.url,
        `SELECT status, problems, reason, source_error, source_lsn::text, lag_bytes, observed_at
           FROM steep_repl.replication_health WHERE kind = 'subscription' AND name = $1`,
        [sub],
      )
    )[0];
  const lastSeen = async (): Promise<number> =>
    (await query(pair.target.url, 'SELECT last_seen FROM steep_repl.nodes WHERE is_local'))[0].last_seen.getTime();
  const events = async () =>
    (await query(pair.target.url, "SELECT event, details FROM steep_repl.audit_log WHERE event LIKE 'replication.%' ORDER BY audit_id")) as Array<{
      event: string;
      details: any;
    }>;
  // the row after a round that began after now
  async function rowAfterNextRound(what: string, predicate: (r: SubRow) => boolean, timeoutMs: number): Promise<SubRow> {
    const since = Date.now();
    let last: SubRow | undefined;
    try {
      return await waitUntil(what, async () => {
        last = await subRow();
        return last && last.observed_at.getTime() > since && predicate(last) ? last : undefined;
      }, timeoutMs, 100);
    } catch (err) {
      throw new Error(`${(err as Error).message}; last row: ${JSON.stringify(last)}; agent log:\n${agent.raw.slice(-30).join('\n')}`);
    }
  }
  // SIGTERM; the agent must be gone within promptExitMs
  async function sigterm(a: AgentProcess): Promise<number> {
    const began = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([a.stop('SIGTERM'), new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), 15000)))]);
    clearTimeout(timer);
    const elapsed = Date.now() - began;
    if (code === 'late') await a.stop('SIGKILL');
    expect({ code, log: a.lines.filter((l) => l.event === 'agent.stopped').length }).toEqual({ code: 0, log: 1 });
    return elapsed;
  }

  it('a watch that never observed degrades the node; a fresh agent has observed by agent.started', async () => {
    await agent.stop();
    // as a node whose agent never ran a watch (0.8, --no-health-watch)
    await query(pair.target.url, 'UPDATE steep_repl.nodes SET replication_observed_at = NULL WHERE is_local');
    const blind = await AgentProcess.start(pair.target.url, ['--no-health-watch', '--heartbeat-interval', '1']);
    try {
      const [unwatched] = await query(pair.target.url, 'SELECT health, health_reason FROM steep_repl.node_overview WHERE is_local');
      expect(unwatched).toEqual({
        health: 'degraded',
        health_reason:
          'the agent heartbeats but its replication watch has not observed yet: an agent older than 0.9.0, --no-health-watch, or failing rounds (health.watch_failed in the agent log)',
      });
    } finally {
      // it holds the agent lock: the next agent could not start
      await blind.stop();
    }

    agent = await startTargetAgent();
    // read at once: the agent's first round came before its agent.started
    const [fresh] = await query(pair.target.url, 'SELECT health, health_reason, replication_observed_at FROM steep_repl.node_overview WHERE is_local');
    expect(fresh).toMatchObject({ health: 'healthy', health_reason: null });
    expect(fresh.replication_observed_at).not.toBeNull();
    expect(await events()).toEqual([]);
  });

  it("the registry pointed at the forwarder: the probe measures the lag through it, healthy", async () => {
    // no command readdresses a registered node: a DBA updates the registry row
    await query(pair.target.url, 'UPDATE steep_repl.nodes SET host = $2, port = $3 WHERE node_id = $1', [sourceId, '127.0.0.1', proxy.port]);
    const row = await rowAfterNextRound('a round measured through the forwarder', (r) => r.source_lsn !== null && proxy.connections() > 0, 15000);
    expect(row).toMatchObject({ status: 'healthy', problems: [], reason: null, source_error: null });
    expect(Number(row.lag_bytes)).toBeGreaterThanOrEqual(0);
    // the subscription itself does not go through it
    const [{ conninfo }] = await query(pair.target.url, 'SELECT subconninfo AS conninfo FROM pg_subscription WHERE subname = $1', [sub]);
    expect(conninfo).toMatch(new RegExp(`port='?${pair.source.cluster.port}'?( |$)`));
  });

  it('SIGTERM right after the source went silent under an open probe session: the agent exits within 3 s', async () => {
    const before = proxy.connections();
    proxy.blackhole();
    // the probe's session through the forwarder is open and now frozen: its
    // next query, and an end() of it, would wait for the network
    const elapsed = await sigterm(agent);
    expect(elapsed).toBeLessThan(promptExitMs);
    expect(proxy.connections()).toBe(before);

    // the network comes back; a new agent's probe passes again
    proxy.forward();
    agent = await startTargetAgent();
    const row = await rowAfterNextRound('a round measured through the forwarder again', (r) => r.source_lsn !== null && r.source_error === null, 15000);
    expect(row.status).toBe('healthy');
    expect(proxy.connections()).toBeGreaterThan(before);
    expect(await events()).toEqual([]);
  });

  it('the source goes silent: the heartbeat goes on, source_unreachable after two rounds in a row naming host:port, one replication.degraded', async () => {
    proxy.blackhole();
    const began = Date.now();
    const heartbeats = new Set<number>();
    const rows: SubRow[] = [];
    let degraded: SubRow | undefined;
    try {
      degraded = await waitUntil('source_unreachable', async () => {
        heartbeats.add(await lastSeen());
        const row = (await subRow())!;
        if (rows.length === 0 || rows[rows.length - 1].observed_at.getTime() !== row.observed_at.getTime()) rows.push(row);
        return row.problems.includes('source_unreachable') ? row : undefined;
      }, 30000, 100);
    } catch (err) {
      throw new Error(`${(err as Error).message}; rounds seen: ${JSON.stringify(rows)}; agent log:\n${agent.raw.slice(-30).join('\n')}`);
    }
    const took = Date.now() - began;

    // The heartbeat is not held up by a round waiting for the source: with
    // one a second, no gap of 3 s between two while the source was silent.
    const beats = [...heartbeats].sort((a, b) => a - b);
    expect(beats.length).toBeGreaterThanOrEqual(Math.floor(took / 3000));
    const gaps = beats.slice(1).map((t, i) => t - beats[i]);
    expect(Math.max(...gaps)).toBeLessThan(3000);
    expect(Date.now() - beats[beats.length - 1]).toBeLessThan(3000);

    // two rounds: the first that could not reach the source records its error and is still healthy
    const firstFailed = rows.findIndex((r) => r.source_error !== null);
    expect(firstFailed).toBeGreaterThanOrEqual(0);
    expect(rows[firstFailed]).toMatchObject({ status: 'healthy', problems: [] });
    expect(degraded.observed_at.getTime()).toBeGreaterThan(rows[firstFailed].observed_at.getTime());
    expect(rows.slice(firstFailed).every((r) => r.source_error !== null)).toBe(true);

    expect(degraded).toMatchObject({ status: 'degraded', problems: ['source_unreachable'], source_lsn: null, lag_bytes: null });
    expect(degraded.reason).toContain(`cannot reach source node ${sourceSql} to measure lag: `);
    // where the agent asked (the registry's address), and what went wrong
    expect(degraded.source_error).toContain(proxyWhere);
    expect(degraded.reason).toContain(proxyWhere);
    expect(degraded.reason).toMatch(/did not answer within 5 s|timeout|timed out/i);

    const [node] = await query(pair.target.url, 'SELECT health, health_reason FROM steep_repl.node_overview WHERE is_local');
    expect(node.health).toBe('degraded');
    expect(node.health_reason).toContain(degraded.reason);
    expect(await events()).toEqual([
      { event: 'replication.degraded', details: expect.objectContaining({ kind: 'subscription', name: sub, peer_node_id: sourceId, problems: ['source_unreachable'] }) },
    ]);
    // a probe that fails is no failed round
    expect(agent.lines.filter((l) => l.event === 'health.watch_failed')).toEqual([]);
  });

  it('SIGTERM while the source is silent: the agent exits within 3 s; a new one starts and the node stays degraded, no new event', async () => {
    const elapsed = await sigterm(agent);
    expect(elapsed).toBeLessThan(promptExitMs);

    // its first round waits for the source's connect timeout: agent.started does not wait for it long
    const began = Date.now();
    agent = await startTargetAgent();
    const startedIn = Date.now() - began;
    expect(startedIn).toBeLessThan(10000);
    // two rounds of the new agent, both failing: still the one problem, no flap across the restart
    await rowAfterNextRound('a round of the new agent', (r) => r.source_error !== null, 15000);
    const row = await rowAfterNextRound('a second round of the new agent', (r) => r.source_error !== null, 15000);
    expect(row).toMatchObject({ status: 'degraded', problems: ['source_unreachable'] });
    expect((await events()).map((e) => e.event)).toEqual(['replication.degraded']);
  });

  it('the registry pointed back at the real source: recovered, lag measured again, one replication.recovered', async () => {
    await query(pair.target.url, 'UPDATE steep_repl.nodes SET host = $2, port = $3 WHERE node_id = $1', [sourceId, pair.source.cluster.host, pair.source.cluster.port]);
    const row = await rowAfterNextRound('healthy again', (r) => r.status === 'healthy', 20000);
    expect(row).toMatchObject({ problems: [], reason: null, source_error: null });
    expect(row.source_lsn).not.toBeNull();
    expect(Number(row.lag_bytes)).toBeGreaterThanOrEqual(0);
    // a few more rounds: still one event each way
    await rowAfterNextRound('another round', () => true, 10000);
    const all = await events();
    expect(all.map((e) => e.event)).toEqual(['replication.degraded', 'replication.recovered']);
    expect(all[1].details).toMatchObject({ kind: 'subscription', name: sub, peer_node_id: sourceId, previous_problems: ['source_unreachable'] });
    expect(all[1].details.previous_reason).toContain(proxyWhere);
    const [node] = await query(pair.target.url, 'SELECT health FROM steep_repl.node_overview WHERE is_local');
    expect(node.health).toBe('healthy');
  });

  it("the subscription's slot dropped on the source: source_slot_missing, disabled or not", async () => {
    await query(pair.target.url, `ALTER SUBSCRIPTION ${escapeIdentifier(sub)} DISABLE`);
    await waitUntil('the slot released by the walsender', async () => {
      const [slot] = await query(pair.source.url, 'SELECT active FROM pg_replication_slots WHERE slot_name = $1', [sub]);
      return slot && !slot.active;
    }, 15000, 100);
    await query(pair.source.url, 'SELECT pg_drop_replication_slot($1)', [sub]);

    const missing = await rowAfterNextRound('source_slot_missing', (r) => r.problems.includes('source_slot_missing'), 15000);
    expect(missing).toMatchObject({ status: 'degraded', problems: ['disabled', 'source_slot_missing'], source_error: null });
    // the source was reached: its position is known, the slot's is not
    expect(missing.source_lsn).not.toBeNull();
    expect(missing.lag_bytes).toBeNull();
    expect(missing.reason).toContain(
      `the slot ${subSql} of subscription ${subSql} is missing on source node ${sourceSql}: nothing can replicate; initialize node ${targetSql} again (steep-repl node start `,
    );
    expect(missing.reason).toMatch(/--force\)/);

    // enabled again, the worker cannot stream from a slot that is gone: still missing
    await query(pair.target.url, `ALTER SUBSCRIPTION ${escapeIdentifier(sub)} ENABLE`);
    const enabled = await rowAfterNextRound('the problem without disabled', (r) => !r.problems.includes('disabled'), 15000);
    expect(enabled.status).toBe('degraded');
    expect(enabled.problems).toContain('source_slot_missing');
    const all = await events();
    const later = all.slice(2);
    expect(later[0]).toMatchObject({ event: 'replication.degraded', details: { problems: ['disabled', 'source_slot_missing'] } });
    expect(later.every((e) => e.event === 'replication.degraded')).toBe(true);
    expect(later[later.length - 1].details.problems).toEqual(enabled.problems);

    // no password in anything the agents wrote or recorded
    const audit = await query(pair.target.url, 'SELECT details::text AS d FROM steep_repl.audit_log');
    const health = await query(pair.target.url, 'SELECT to_jsonb(h)::text AS d FROM steep_repl.replication_health h');
    for (const text of [...audit, ...health].map((r) => r.d).concat(agents.flatMap((a) => a.raw))) expect(text).not.toContain(password);
  });
});
