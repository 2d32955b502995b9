// Replication health after SYNCHRONIZED (issue 15), as a DBA meets it: a
// real PG18 pair initialized with node start, both nodes' agents watching
// every second, and real failures: a key written on both nodes (the apply
// worker fails in a loop), a disabled subscription while the source writes,
// a slot retaining more WAL than its (test-sized) threshold. Each is read
// back through node status --json, node status and node list text, the
// events (audit_log, NOTIFY steep_repl_events, the agent's JSON log) and the
// live view in a real terminal; each recovers on its own.
import * as path from 'node:path';
import { Client, escapeIdentifier } from 'pg';
import { packageRoot } from '../lib/paths';
import { clusterA, clusterB, query } from './support/clusters';
import { contentHashes, createInitPair, InitPair, NodeDb, waitCaughtUp } from './support/init-pair';
import { ChannelRecorder } from './support/notifications';
import { AgentProcess, runCli, stopAllAgents } from './support/processes';
import { TmuxSession } from './support/tmux';
import { waitUntil } from './support/wait';

jest.setTimeout(120000);

const runJs = path.join(packageRoot, 'bin', 'run.js');
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

// ids of their own: a slot's name comes from the pair's ids, and slots are shared by the whole cluster (test/health-sql.test.ts has 'Health "Src" ü')
const sourceId = 'Gesund "Quelle" ü';
const targetId = 'gesund ziel select';
describe('replication health of a synchronized pair', () => {
  let pair: InitPair;
  let sourceAgent: AgentProcess;
  let targetAgent: AgentProcess;
  // the subscription (on B) and its slot (on A) share the pair's name
  let sub: string;
  // as the reasons write them: %I of the object, quote_ident of a node
  let subSql: string;
  let sourceSql: string;
  let targetSql: string;
  let pg18 = false;
  const recorders: Record<'source' | 'target', ChannelRecorder | undefined> = { source: undefined, target: undefined };
  const fenceClients: Record<'source' | 'target', Client | undefined> = { source: undefined, target: undefined };
  let tui: TmuxSession | undefined;

  beforeAll(async () => {
    pair = await createInitPair({ tag: 'health', sourceCluster: clusterA(), targetCluster: clusterB(), sourceId, targetId, rows: 2000 });
    sub = pair.replicationName;
    [{ subSql, sourceSql, targetSql }] = await query(pair.target.url, "SELECT format('%I', $1::text) AS \"subSql\", quote_ident($2) AS \"sourceSql\", quote_ident($3) AS \"targetSql\"", [
      sub,
      sourceId,
      targetId,
    ]);
    pg18 = Number((await query(pair.target.url, 'SHOW server_version_num'))[0].server_version_num) >= 180000;
    // an observation every second: the test waits seconds, not minutes
    for (const db of [pair.source, pair.target]) await query(db.url, 'UPDATE steep_repl.health_settings SET watch_interval_seconds = 1');
    for (const side of ['source', 'target'] as const) {
      recorders[side] = await ChannelRecorder.listen(pair[side].url, ['steep_repl_events']);
      fenceClients[side] = new Client({ connectionString: pair[side].url });
      await fenceClients[side]!.connect();
    }
    [sourceAgent, targetAgent] = await Promise.all([AgentProcess.start(pair.source.url), AgentProcess.start(pair.target.url)]);
    const started = await runCli(['node', 'start', targetId, '--from', sourceId, '--db', pair.target.url]);
    if (started.code !== 0) {
      const failures = targetAgent.lines.filter((l) => /failed$/.test(l.event)).map((l) => JSON.stringify(l));
      throw new Error(`node start exited ${started.code}: ${started.stderr.slice(0, 2000)}\nagent: ${failures.join('\n')}`);
    }
  });
  afterAll(async () => {
    tui?.kill();
    for (const side of ['source', 'target'] as const) {
      await recorders[side]?.close().catch(() => undefined);
      await fenceClients[side]?.end().catch(() => undefined);
    }
    await stopAllAgents();
    await pair?.drop();
  });

  // node status --json of a node, read by the CLI from a node's own database
  async function status(db: NodeDb, id = db.id): Promise<any> {
    const result = await runCli(['node', 'status', id, '--json', '--db', db.url]);
    if (result.code !== 0) throw new Error(`node status ${id} exited ${result.code}: ${result.stderr}`);
    return JSON.parse(result.stdout);
  }
  const subRow = (s: any) => (s.replication ?? []).find((r: any) => r.kind === 'subscription' && r.name === sub);
  const slotRow = (s: any) => (s.replication ?? []).find((r: any) => r.kind === 'slot' && r.name === sub);
  // polls node status --json until the predicate holds; the last status in the error
  async function statusUntil(db: NodeDb, what: string, predicate: (s: any) => boolean, timeoutMs: number): Promise<any> {
    let last: any;
    try {
      return await waitUntil(what, async () => {
        last = await status(db);
        return predicate(last) ? last : undefined;
      }, timeoutMs, 100);
    } catch (err) {
      throw new Error(`${(err as Error).message}; last node status: ${JSON.stringify({ health: last?.health, health_reason: last?.health_reason, replication: last?.replication })}`);
    }
  }

  const replicationEvents = async (db: NodeDb) =>
    (await query(db.url, "SELECT event, node_id, details FROM steep_repl.audit_log WHERE event LIKE 'replication.%' ORDER BY audit_id")) as Array<{
      event: string;
      node_id: string;
      details: any;
    }>;
  // replication.* notifications that arrived on steep_repl_events (all, up to a fence sent now)
  const notified: Record<'source' | 'target', any[]> = { source: [], target: [] };
  async function notifications(side: 'source' | 'target'): Promise<any[]> {
    await recorders[side]!.fence(fenceClients[side]!);
    notified[side].push(...recorders[side]!.take().map((n) => n.payload).filter((p) => /^replication\./.test(p.event)));
    return notified[side];
  }
  // every audit row also went out as a NOTIFY, with the same event, node and details
  async function expectNotifiedAsAudited(side: 'source' | 'target'): Promise<void> {
    const audited = await replicationEvents(pair[side]);
    expect((await notifications(side)).map((n) => ({ event: n.event, node_id: n.node_id, details: n.details }))).toEqual(audited);
  }

  it('a synchronized pair is healthy: the subscription and its slot observed, lag known', async () => {
    const target = await statusUntil(
      pair.target,
      'the subscription observed with its lag',
      // and the reverse slot the init prepared on B at its end (below)
      // (right after the handover the worker may restart once, and the catch-up's tail may still be confirming)
      (s) =>
        s.health === 'healthy' && subRow(s)?.worker_pid > 0 && subRow(s)?.lag_bytes != null && subRow(s).lag_bytes < 1024 * 1024 &&
        subRow(s)?.lag_seconds != null && s.replication.some((r: any) => r.kind === 'slot'),
      20000,
    );
    expect(target.init_state).toBe('synchronized');
    expect(target.health_reason).toBeNull();
    const row = subRow(target);
    expect(row).toMatchObject({
      kind: 'subscription',
      name: sub,
      node_id: targetId,
      peer_node_id: sourceId,
      status: 'healthy',
      problems: [],
      reason: null,
      enabled: true,
      slot_name: sub,
      apply_error_count: 0,
      sync_error_count: 0,
      source_error: null,
    });
    expect(row.worker_pid).toBeGreaterThan(0);
    expect(row.lag_bytes).toBeGreaterThanOrEqual(0);
    // a synchronized, idle pair: well under a MB and a minute behind
    expect(row.lag_bytes).toBeLessThan(1024 * 1024);
    expect(row.lag_seconds).toBeGreaterThanOrEqual(0);
    expect(row.lag_seconds).toBeLessThan(60);
    // bigint columns of node_overview come as text, as its other ones do
    expect(Number(target.replication_lag_bytes)).toBe(row.lag_bytes);
    if (pg18) expect(row.conflicts).toMatchObject({ insert_exists: 0, update_missing: 0, delete_missing: 0 });
    else expect(row.conflicts).toBeNull();
    // B's one slot is the reverse direction's, prepared by the init for a
    // later init of A from B: unused by design, so not degraded
    const [{ reverse }] = await query(pair.target.url, 'SELECT steep_repl.replication_name($1, $2) AS reverse', [targetId, sourceId]);
    expect(target.replication.filter((r: any) => r.kind === 'slot')).toEqual([
      expect.objectContaining({ name: reverse, peer_node_id: sourceId, prepared: true, slot_active: false, status: 'healthy', problems: [] }),
    ]);

    const source = await statusUntil(pair.source, 'the slot observed', (s) => s.health === 'healthy' && slotRow(s)?.retained_bytes != null, 20000);
    expect(slotRow(source)).toMatchObject({
      kind: 'slot',
      name: sub,
      node_id: sourceId,
      peer_node_id: targetId,
      status: 'healthy',
      problems: [],
      reason: null,
      slot_active: true,
      prepared: false,
      wal_status: 'reserved',
    });
    expect(slotRow(source).retained_bytes).toBeGreaterThanOrEqual(0);
    expect(source.replication.filter((r: any) => r.kind === 'subscription')).toEqual([]);
    // a clean init raised nothing
    expect(await replicationEvents(pair.target)).toEqual([]);
    expect(await replicationEvents(pair.source)).toEqual([]);
  });

  it('the same key written on B then on A: B degraded within 10 s with the apply errors (and on 18 insert_exists), one event', async () => {
    await query(pair.target.url, "INSERT INTO public.accounts VALUES (900001, 1, 'written on B')");
    await query(pair.source.url, "INSERT INTO public.accounts VALUES (900001, 2, 'written on A')");
    // within 10 s: statusUntil fails past its timeout
    const degraded = await statusUntil(pair.target, 'node B degraded', (s) => s.health === 'degraded', 10000);
    const row = subRow(degraded);
    expect(row.status).toBe('degraded');
    expect(row.problems).toContain('apply_errors');
    expect(row.reason).toMatch(/apply worker failing: \d+ errors? in 5 min/);
    if (pg18) expect(row.reason).toMatch(/\d+ insert_exists conflicts?/);
    expect(row.reason).toContain(`ALTER SUBSCRIPTION ${subSql} SKIP`);
    expect(degraded.health_reason).toContain(row.reason);

    // The worker fails again (every wal_retrieve_retry_interval): the count
    // rises inside the same problem, the reason says so, and no second event comes.
    await waitUntil('a second apply error', async () => {
      const [stats] = await query(pair.target.url, 'SELECT apply_error_count::int AS n FROM pg_stat_subscription_stats WHERE subname = $1', [sub]);
      return stats.n >= 2;
    }, 30000);
    const again = await statusUntil(pair.target, 'the watch to count the second error', (s) => subRow(s)?.apply_error_count >= 2, 10000);
    const rowAgain = subRow(again);
    expect(rowAgain.problems).toEqual(row.problems);
    expect(rowAgain.apply_errors_recent).toBeGreaterThanOrEqual(2);
    expect(rowAgain.reason).toMatch(new RegExp(`apply worker failing: ${rowAgain.apply_errors_recent} errors in 5 min`));
    if (pg18) {
      expect(rowAgain.conflicts.insert_exists).toBeGreaterThanOrEqual(2);
      expect(rowAgain.reason).toMatch(new RegExp(`${rowAgain.conflicts_recent.insert_exists} insert_exists conflicts`));
    }

    const events = await replicationEvents(pair.target);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      event: 'replication.degraded',
      node_id: targetId,
      details: { kind: 'subscription', name: sub, peer_node_id: sourceId, problems: row.problems, reason: expect.stringMatching(/apply worker failing/) },
    });
    await expectNotifiedAsAudited('target');
    // the agent's JSON log, through its listener
    expect(targetAgent.lines.filter((l) => l.event === 'replication.degraded')).toEqual([
      expect.objectContaining({ kind: 'subscription', name: sub, problems: row.problems }),
    ]);
    // the slot on A is not what fails
    expect(await replicationEvents(pair.source)).toEqual([]);
  });

  it('the DBA deletes the row on B: the row from A arrives, B is healthy again on its own, one replication.recovered', async () => {
    await query(pair.target.url, 'DELETE FROM public.accounts WHERE id = 900001');
    await waitUntil('the row from A on B', async () => {
      const rows = await query(pair.target.url, 'SELECT note FROM public.accounts WHERE id = 900001');
      return rows[0]?.note === 'written on A';
    }, 30000);
    // healthy once no error came for the quiet period (2 × wal_retrieve_retry_interval + the interval)
    const healthy = await statusUntil(pair.target, 'node B healthy again', (s) => s.health === 'healthy', 40000);
    expect(healthy.health_reason).toBeNull();
    expect(subRow(healthy)).toMatchObject({ status: 'healthy', problems: [], reason: null, enabled: true });
    expect(subRow(healthy).apply_error_count).toBeGreaterThanOrEqual(2);
    expect(subRow(healthy).worker_pid).toBeGreaterThan(0);

    // a few more rounds: still one of each
    await new Promise((r) => setTimeout(r, 2500));
    const events = await replicationEvents(pair.target);
    expect(events.map((e) => e.event)).toEqual(['replication.degraded', 'replication.recovered']);
    expect(events[1].details).toMatchObject({
      kind: 'subscription',
      name: sub,
      peer_node_id: sourceId,
      previous_problems: events[0].details.problems,
      previous_reason: expect.stringMatching(/apply worker failing/),
    });
    expect(events[1].details.removed).toBeUndefined();
    await expectNotifiedAsAudited('target');
    expect(targetAgent.lines.filter((l) => l.event === 'replication.recovered')).toHaveLength(1);
  });

  it('a disabled subscription while A writes: B degraded "is disabled", lag rising; node status, node list and the live view say so', async () => {
    tui = new TmuxSession(
      'health-tui',
      `${shellQuote(process.execPath)} ${shellQuote(runJs)} tui --db ${shellQuote(pair.target.url)} --node ${shellQuote(targetId)}; echo "TUI-EXIT rc=$?"; sleep 600`,
      160,
      34,
    );
    const targetRow = (screen: string) => screen.split('\n').find((l) => l.includes(targetId) && /SYNCHRONIZED/.test(l)) ?? '';
    await tui.waitFor((s) => /healthy/.test(targetRow(s)), 20000, 'node B healthy in the live view');

    await query(pair.target.url, `ALTER SUBSCRIPTION ${escapeIdentifier(sub)} DISABLE`);
    await query(pair.source.url, "INSERT INTO public.accounts SELECT g, g, 'while disabled' FROM generate_series(2000001, 2000500) g");
    // the view follows the database within 2 s (5 s: room for a loaded machine)
    await waitUntil('node B degraded in node_overview', async () => {
      const [n] = await query(pair.target.url, 'SELECT health FROM steep_repl.node_overview WHERE node_id = $1', [targetId]);
      return n.health === 'degraded';
    }, 10000, 50);
    let screen = await tui.waitFor(
      (s) => /degraded/.test(targetRow(s)) && s.includes(`⚠ ${targetSql} degraded: subscription ${subSql} from node ${sourceSql} is disabled`),
      5000,
      'node B degraded with its reason in the live view',
    );
    expect(targetRow(screen)).not.toMatch(/healthy/);
    // LAG follows the watch's measure: the writes A made since the disable
    await tui.waitFor((s) => /SYNCHRONIZED\s+\S.*?\s+[1-9][\d.]*[kM]B\s/.test(targetRow(s)), 5000, "node B's lag in the LAG column");

    const first = await statusUntil(pair.target, 'B degraded: disabled, lag measured after the writes', (s) => s.health === 'degraded' && subRow(s)?.lag_bytes > 0, 10000);
    const row = subRow(first);
    expect(row).toMatchObject({ status: 'degraded', problems: ['disabled'], enabled: false, worker_pid: null });
    expect(row.reason).toContain(`subscription ${subSql} from node ${sourceSql} is disabled`);
    expect(row.reason).toContain(`ALTER SUBSCRIPTION ${subSql} ENABLE`);
    expect(first.health_reason).toContain(row.reason);

    // more writes on A: the next reads show the lag growing
    await query(pair.source.url, "INSERT INTO public.accounts SELECT g, g, md5(g::text) FROM generate_series(2000501, 2003000) g");
    const second = await statusUntil(pair.target, 'the lag to rise', (s) => subRow(s)?.lag_bytes > row.lag_bytes, 10000);
    expect(subRow(second).problems).toEqual(['disabled']);
    expect(subRow(second).lag_seconds).toBeGreaterThan(0);
    expect(Number(second.replication_lag_bytes)).toBe(subRow(second).lag_bytes);
    const events = await replicationEvents(pair.target);
    expect(events.map((e) => [e.event, e.details.problems ?? e.details.previous_problems])).toEqual([
      ['replication.degraded', ['apply_errors']],
      ['replication.recovered', ['apply_errors']],
      ['replication.degraded', ['disabled']],
    ]);

    // node status text: the health line with the reason, a lag line, the subscription's line
    const text = await runCli(['node', 'status', targetId, '--db', pair.target.url]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^health\s+degraded — subscription \S+ from node .* is disabled.* \(last seen .*\)$/m);
    expect(text.stdout).toMatch(/^lag\s+\S/m);
    const subLine = text.stdout.split('\n').find((l) => /^subscription\s/.test(l));
    expect(subLine).toBeDefined();
    expect(subLine).toContain(sub);
    expect(subLine).toContain(sourceSql);
    expect(subLine).toMatch(/disabled/);

    // node list text: HEALTH degraded, and the reason under the table
    const list = await runCli(['node', 'list', '--db', pair.target.url]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/NODE\s+ADDRESS\s+STATE\s+INIT\s+LAG\s+HEALTH\s+LAST SEEN\s+PRIO/);
    const listRow = list.stdout.split('\n').find((l) => l.startsWith(`${targetId} *`));
    expect(listRow).toMatch(/degraded/);
    expect(list.stdout).toContain(`${targetSql}: degraded — ${first.health_reason}`);

    // A's node list and node status read B's health from B's own database
    // (A's registry has B only as its last probe saw it: reachable)
    const listA = await runCli(['node', 'list', '--db', pair.source.url]);
    expect(listA.code).toBe(0);
    expect(listA.stdout.split('\n').find((l) => l.startsWith(`${targetId} `))).toMatch(/degraded/);
    expect(listA.stdout).toContain(`${targetSql}: degraded — ${first.health_reason}`);
    const jsonA = await runCli(['node', 'list', '--json', '--db', pair.source.url]);
    expect(jsonA.code).toBe(0);
    const bFromA = JSON.parse(jsonA.stdout).find((n: any) => n.node_id === targetId);
    expect(bFromA).toMatchObject({ health: 'degraded', health_reason: first.health_reason, health_from: 'own database' });
    expect(subRow(bFromA)).toMatchObject({ status: 'degraded', problems: ['disabled'] });
    const statusA = await status(pair.source, targetId);
    expect(statusA).toMatchObject({ health: 'degraded', health_reason: first.health_reason, health_from: 'own database' });
    expect(subRow(statusA)).toMatchObject({ problems: ['disabled'] });

    // the detail overlay: the Replication section with the subscription's facts
    tui.sendKeys('Enter');
    screen = await tui.waitFor((s) => /Replication/.test(s) && s.split('\n').some((l) => l.includes(sub) && /disabled/.test(l)), 10000, 'the overlay with the subscription');
    const overlayLine = screen.split('\n').find((l) => l.includes(sub) && /disabled/.test(l))!;
    expect(overlayLine).toContain(`from ${sourceSql}`);
    if (pg18) expect(screen).toMatch(/insert_exists/);
    tui.sendKeys('Escape');
    await tui.waitFor((s) => !/Replication/.test(s), 10000, 'the overlay closed');
  });

  it('a slot retaining more WAL than slot_retained_bytes (1 MB here) degrades the source node, naming the slot', async () => {
    const before = await status(pair.source);
    expect(before.health).toBe('healthy');
    expect(slotRow(before).status).toBe('healthy');

    await query(pair.source.url, 'UPDATE steep_repl.health_settings SET slot_retained_bytes = 1048576');
    // a few MB of WAL the disabled subscription does not confirm
    await query(pair.source.url, "INSERT INTO public.accounts SELECT g, g, repeat(md5(g::text), 4) FROM generate_series(3000001, 3020000) g");
    const degraded = await statusUntil(pair.source, 'node A degraded by its slot', (s) => s.health === 'degraded', 10000);
    const row = slotRow(degraded);
    expect(row).toMatchObject({ status: 'degraded', problems: ['slot_retained'], peer_node_id: targetId, slot_active: false });
    expect(row.retained_bytes).toBeGreaterThan(1048576);
    expect(row.reason).toMatch(new RegExp(`^slot ${subSql} for node ${escapeRegExp(targetSql)} retains \\S+ \\S+ of WAL \\(more than 1024 kB\\)`));
    expect(degraded.health_reason).toContain(row.reason);
    const events = await replicationEvents(pair.source);
    expect(events).toEqual([
      { event: 'replication.degraded', node_id: sourceId, details: expect.objectContaining({ kind: 'slot', name: sub, peer_node_id: targetId, problems: ['slot_retained'] }) },
    ]);
    await expectNotifiedAsAudited('source');
    expect(sourceAgent.lines.filter((l) => l.event === 'replication.degraded')).toHaveLength(1);

    const list = await runCli(['node', 'list', '--db', pair.source.url]);
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n').find((l) => l.startsWith(`${sourceId} *`))).toMatch(/degraded/);
    expect(list.stdout).toContain(`${sourceSql}: degraded — slot ${subSql} for node ${targetSql} retains`);

    // the live view reads node A from A's own database: its warning under the table too
    const screen = await tui!.waitFor(
      (s) => s.includes(`⚠ ${sourceSql} degraded: slot ${subSql} for node ${targetSql} retains`),
      5000,
      "node A's slot warning in the live view",
    );
    expect(screen.split('\n').find((l) => l.startsWith(` ${sourceId} `) && /UNINITIALIZED/.test(l))).toMatch(/degraded/);
  });

  it('ENABLE: both nodes recover on their own, one replication.recovered each, the data equal', async () => {
    await query(pair.target.url, `ALTER SUBSCRIPTION ${escapeIdentifier(sub)} ENABLE`);
    await waitCaughtUp(pair);
    const target = await statusUntil(pair.target, 'node B healthy', (s) => s.health === 'healthy', 20000);
    expect(subRow(target)).toMatchObject({ status: 'healthy', problems: [], enabled: true });
    expect(subRow(target).worker_pid).toBeGreaterThan(0);
    // The slot's restart_lsn moves on at the next running-xacts record the
    // walsender decodes (the bgwriter logs one every 15 s); one logged now saves the wait.
    const source = await statusUntil(
      pair.source,
      'node A healthy',
      (s) => {
        void query(pair.source.url, 'SELECT pg_log_standby_snapshot()').catch(() => undefined);
        return s.health === 'healthy';
      },
      40000,
    );
    expect(slotRow(source)).toMatchObject({ status: 'healthy', problems: [], reason: null, slot_active: true });
    expect(slotRow(source).retained_bytes).toBeLessThanOrEqual(1048576);

    const targetEvents = await replicationEvents(pair.target);
    expect(targetEvents.map((e) => [e.event, e.details.problems ?? e.details.previous_problems])).toEqual([
      ['replication.degraded', ['apply_errors']],
      ['replication.recovered', ['apply_errors']],
      ['replication.degraded', ['disabled']],
      ['replication.recovered', ['disabled']],
    ]);
    const sourceEvents = await replicationEvents(pair.source);
    expect(sourceEvents.map((e) => e.event)).toEqual(['replication.degraded', 'replication.recovered']);
    expect(sourceEvents[1].details).toMatchObject({ kind: 'slot', name: sub, peer_node_id: targetId, previous_problems: ['slot_retained'] });
    await expectNotifiedAsAudited('target');
    await expectNotifiedAsAudited('source');

    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));

    // the live view follows: B healthy, no warning line
    const screen = await tui!.waitFor(
      (s) => s.split('\n').some((l) => l.includes(targetId) && /SYNCHRONIZED/.test(l) && /healthy/.test(l)) && !s.includes(`⚠ ${targetSql}`),
      10000,
      'node B healthy again in the live view',
    );
    expect(screen).not.toContain(`⚠ ${targetSql}`);
    tui!.sendKeys('q');
    expect(await tui!.waitFor(/TUI-EXIT rc=\d+/, 10000)).toMatch(/TUI-EXIT rc=0/);
  });
});

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
