// Replication health's SQL alone, as psql sees it (no agent): the settings'
// one row and its named checks; observe_replication's refusals (SR004,
// nothing recorded); on a real PostgreSQL 18 pair with odd node ids the
// facts of a subscription and its slot, events once per change of the
// problem set (driven with crafted sources), lag in time interpolated from
// the history or a lower bound said so, the trend, the history trimmed,
// slot thresholds, problems that do not flap (apply errors until the slot
// moves on, table sync errors until no table is left, thresholds 10 % on
// the good side, an unreachable source after two rounds), a slot missing on
// the source, a failed init's disabled subscription, a prepared slot's
// advice, a real apply error and its recovery, node_overview's health and
// reasons (a watch that never observed or stopped), a dropped subscription;
// and on PostgreSQL 15 (no leader_pid, no worker_type, no conflict
// counters) the same round works with conflicts NULL.
import { escapeIdentifier, escapeLiteral } from 'pg';
import { nodeConninfo } from '../lib/connection';
import { observeReplication, SourceFacts } from '../lib/sql/observeReplication';
import { ReplicationHealthRow } from '../lib/sql/listNodes';
import { replicationSources } from '../lib/sql/replicationSources';
import { clusterA, clusterB, createNodeDatabase, dropDatabase, OwnClusters, query, refusal, startOwnClusters, withClient } from './support/clusters';
import { createInitPair, InitPair } from './support/init-pair';
import { replicatePair } from './support/verify-pair';
import { waitUntil } from './support/wait';

jest.setTimeout(90000);

const observe = (url: string, sources: Record<string, SourceFacts> = {}): Promise<ReplicationHealthRow[]> =>
  withClient(url, (c) => observeReplication(c, sources));

// What the source says of the pair's slot, as the agent reads it there
// (its flush position: an idle server's insert position can stay past a
// page header).
async function sourceFacts(pair: InitPair): Promise<Record<string, SourceFacts>> {
  const [row] = await query(
    pair.source.url,
    `SELECT pg_current_wal_flush_lsn()::text AS current_lsn, s.confirmed_flush_lsn::text AS confirmed_flush_lsn, s.active AS slot_active,
            true AS slot_exists
       FROM pg_replication_slots s WHERE s.slot_name = $1`,
    [pair.replicationName],
  );
  return { [pair.replicationName]: row };
}

const events = async (url: string, name: string): Promise<any[]> =>
  query(url, "SELECT event, node_id, details FROM steep_repl.audit_log WHERE event LIKE 'replication.%' AND details ->> 'name' = $1 ORDER BY audit_id", [
    name,
  ]);

const resetSettings = (url: string): Promise<unknown> =>
  query(
    url,
    `UPDATE steep_repl.health_settings SET watch_interval_seconds = DEFAULT, lag_bytes = DEFAULT, lag_seconds = DEFAULT,
            error_window_seconds = DEFAULT, worker_missing_seconds = DEFAULT, slot_retained_bytes = DEFAULT,
            slot_safe_wal_bytes = DEFAULT, slot_inactive_seconds = DEFAULT, history_seconds = DEFAULT`,
  );

// What a round may change.
async function recorded(url: string): Promise<unknown> {
  const [row] = await query(
    url,
    `SELECT (SELECT coalesce(jsonb_agg(to_jsonb(h) ORDER BY kind, name), '[]') FROM steep_repl.replication_health h) AS rows,
            (SELECT count(*)::int FROM steep_repl.replication_health_history) AS history,
            (SELECT count(*)::int FROM steep_repl.audit_log) AS audit,
            (SELECT status FROM steep_repl.nodes WHERE is_local) AS status`,
  );
  return row;
}

describe('health_settings', () => {
  let db: { name: string; url: string };
  beforeAll(async () => {
    db = await createNodeDatabase(clusterA(), 'health_settings');
  });
  afterAll(async () => {
    if (db) await dropDatabase(clusterA(), db.name);
  });

  it('has one row of defaults', async () => {
    expect(await query(db.url, 'SELECT * FROM steep_repl.health_settings')).toEqual([
      {
        only_row: true,
        watch_interval_seconds: '5',
        lag_bytes: '1073741824',
        lag_seconds: '300',
        error_window_seconds: 300,
        worker_missing_seconds: 30,
        slot_retained_bytes: '10737418240',
        slot_safe_wal_bytes: '1073741824',
        slot_inactive_seconds: 300,
        history_seconds: 3600,
        updated_at: null,
      },
    ]);
  });

  it.each([
    ['watch_interval_seconds = 0.4', 'watch_interval_seconds must be between 0.5 and 3600'],
    ['watch_interval_seconds = 3601', 'watch_interval_seconds must be between 0.5 and 3600'],
    ['lag_bytes = 0', 'lag_bytes must be positive'],
    ['lag_seconds = -1', 'lag_seconds must be positive'],
    ['error_window_seconds = 9', 'error_window_seconds must be between 10 and 86400'],
    ['error_window_seconds = 86401, history_seconds = 90000', 'error_window_seconds must be between 10 and 86400'],
    ['worker_missing_seconds = 0', 'worker_missing_seconds must be positive'],
    ['slot_retained_bytes = 0', 'slot_retained_bytes must be positive'],
    ['slot_safe_wal_bytes = -5', 'slot_safe_wal_bytes must be positive'],
    ['slot_inactive_seconds = 0', 'slot_inactive_seconds must be positive'],
    ['history_seconds = 299', 'history_seconds must be at least error_window_seconds'],
    ['history_seconds = 604801', 'history_seconds must be at most 604800 (7 days)'],
    ['lag_seconds = 3601', 'history_seconds must be at least lag_seconds'],
    ['only_row = false', 'health_settings has one row'],
  ])('refuses SET %s, naming the rule', async (set, rule) => {
    const err = await refusal(db.url, `UPDATE steep_repl.health_settings SET ${set}`);
    expect(err.code).toBe('23514');
    expect(err.constraint).toBe(rule);
    expect(err.message).toContain(`"${rule}"`);
    expect((await query(db.url, 'SELECT updated_at FROM steep_repl.health_settings'))[0].updated_at).toBeNull();
  });

  it('refuses NULL thresholds', async () => {
    const err = await refusal(db.url, 'UPDATE steep_repl.health_settings SET lag_bytes = NULL');
    expect(err.code).toBe('23502');
    expect(err.column).toBe('lag_bytes');
  });

  it('refuses DELETE and TRUNCATE: it keeps its one row', async () => {
    for (const sql of ['DELETE FROM steep_repl.health_settings', 'TRUNCATE steep_repl.health_settings']) {
      const err = await refusal(db.url, sql);
      expect(err.code).toBe('SR004');
      expect(err.message).toBe('health_settings keeps its one row: UPDATE it');
    }
    expect(await query(db.url, 'SELECT count(*)::int AS n FROM steep_repl.health_settings')).toEqual([{ n: 1 }]);
  });

  it('sets updated_at when a value changes, and an INSERT replaces the values (as a restore of a dump does)', async () => {
    await query(db.url, 'UPDATE steep_repl.health_settings SET lag_bytes = 2048');
    const [first] = await query(db.url, 'SELECT lag_bytes, updated_at FROM steep_repl.health_settings');
    expect(first.lag_bytes).toBe('2048');
    expect(first.updated_at).toBeInstanceOf(Date);
    await query(db.url, 'UPDATE steep_repl.health_settings SET lag_bytes = 2048');
    expect((await query(db.url, 'SELECT updated_at FROM steep_repl.health_settings'))[0].updated_at).toEqual(first.updated_at);

    await query(db.url, 'INSERT INTO steep_repl.health_settings (lag_bytes, slot_inactive_seconds) VALUES (4096, 77)');
    expect(await query(db.url, 'SELECT only_row, lag_bytes, slot_inactive_seconds, lag_seconds FROM steep_repl.health_settings')).toEqual([
      { only_row: true, lag_bytes: '4096', slot_inactive_seconds: 77, lag_seconds: '300' },
    ]);
    // the row's checks hold for an INSERT too
    expect((await refusal(db.url, 'INSERT INTO steep_repl.health_settings (lag_bytes) VALUES (0)')).constraint).toBe('lag_bytes must be positive');
  });

  it('observe_replication needs a local node', async () => {
    const err = await refusal(db.url, 'SELECT * FROM steep_repl.observe_replication()');
    expect(err.code).toBe('SR004');
    expect(err.message).toContain('this database is not registered as a local node');
  });

  it('a round with nothing to watch is a round: replication_observed_at set, healthy', async () => {
    await query(db.url, "SELECT steep_repl.register_node(p_node_id => 'Lonely \"1\"', p_host => 'localhost', p_dbname => 'x', p_is_local => true)");
    await query(db.url, 'SELECT steep_repl.heartbeat()');
    expect((await query(db.url, 'SELECT health FROM steep_repl.node_overview WHERE is_local'))[0].health).toBe('degraded');
    expect(await observe(db.url)).toEqual([]);
    const [local] = await query(db.url, 'SELECT health, health_reason, replication, replication_observed_at FROM steep_repl.node_overview WHERE is_local');
    expect(local).toMatchObject({ health: 'healthy', health_reason: null, replication: [] });
    expect(local.replication_observed_at).toBeInstanceOf(Date);
  });
});

describe('replication health on a PostgreSQL 18 pair', () => {
  let pair: InitPair;
  let sub: string;
  let source: string;
  let target: string;

  beforeAll(async () => {
    pair = await createInitPair({
      tag: 'health_sql',
      sourceCluster: clusterA(),
      targetCluster: clusterB(),
      sourceId: 'Health "Src" ü',
      targetId: 'health tgt select',
      rows: 50,
    });
    await replicatePair(pair);
    sub = pair.replicationName;
    source = pair.source.id;
    target = pair.target.id;
  });
  afterAll(async () => {
    await pair?.drop();
  });

  const alterSub = (what: string) => query(pair.target.url, `ALTER SUBSCRIPTION ${escapeIdentifier(sub)} ${what}`);

  it('records a healthy subscription and its slot, each on its own node', async () => {
    expect(await withClient(pair.target.url, replicationSources)).toEqual([
      {
        subscription: sub,
        source_node: source,
        slot_name: sub,
        host: pair.source.cluster.host,
        port: pair.source.cluster.port,
        dbname: pair.source.name,
        user_name: pair.source.cluster.user,
      },
    ]);
    const facts = await sourceFacts(pair);
    const [row] = await observe(pair.target.url, facts);
    expect(row).toMatchObject({
      kind: 'subscription',
      name: sub,
      node_id: target,
      peer_node_id: source,
      status: 'healthy',
      problems: [],
      reason: null,
      enabled: true,
      slot_name: sub,
      source_lsn: facts[sub]['current_lsn' as keyof SourceFacts],
      source_slot_active: true,
      apply_error_count: 0,
      sync_error_count: 0,
      apply_errors_recent: 0,
      source_error: null,
    });
    expect(row.worker_pid).toEqual(expect.any(Number));
    expect(row.worker_seen_at).toBe(row.observed_at);
    expect(row.lag_bytes).toEqual(expect.any(Number));
    // 18 has conflict counters, every one of them, prefix dropped
    expect(row.conflicts).toMatchObject({ insert_exists: 0, update_missing: 0, delete_missing: 0 });
    expect(Object.keys(row.conflicts!).some((k) => k.startsWith('confl'))).toBe(false);
    expect(Object.keys(row.conflicts_recent!).sort()).toEqual(Object.keys(row.conflicts!).sort());

    const [slot] = await observe(pair.source.url);
    expect(slot).toMatchObject({
      kind: 'slot',
      name: sub,
      node_id: source,
      peer_node_id: target,
      status: 'healthy',
      slot_active: true,
      prepared: false,
      wal_status: 'reserved',
      inactive_seen_since: null,
      enabled: null,
      conflicts: null,
    });
    expect(slot.retained_bytes).toBeGreaterThanOrEqual(0);
    expect(slot.active_pid).toEqual(expect.any(Number));
    // pg_subscription is shared by the cluster: the source's database has none of it
    expect(await withClient(pair.source.url, replicationSources)).toEqual([]);
  });

  it('node_overview: offline without a heartbeat, healthy with one, the rows on the local row only', async () => {
    await query(pair.target.url, "UPDATE steep_repl.nodes SET last_seen = NULL, status = 'unknown' WHERE is_local");
    let [local] = await query(pair.target.url, 'SELECT * FROM steep_repl.node_overview WHERE is_local');
    expect(local.health).toBe('offline');
    expect(local.health_reason).toBe('no agent has run for this node: start steep-repl agent --db <url of "health tgt select">');

    await query(pair.target.url, "UPDATE steep_repl.nodes SET last_seen = now() - interval '45 seconds' WHERE is_local");
    [local] = await query(pair.target.url, 'SELECT * FROM steep_repl.node_overview WHERE is_local');
    expect(local.health).toBe('offline');
    expect(local.health_reason).toMatch(/^agent silent for 45 s \(last heartbeat \d\d:\d\d:\d\d\): is steep-repl agent running\?$/);

    const [beat] = await query(pair.target.url, 'SELECT (steep_repl.heartbeat()).status');
    expect(beat.status).toBe('healthy');
    const rows = await query(pair.target.url, 'SELECT * FROM steep_repl.node_overview ORDER BY is_local');
    [, local] = rows;
    expect(local).toMatchObject({ health: 'healthy', health_reason: null });
    expect(local.replication).toHaveLength(1);
    expect(local.replication[0]).toMatchObject({ kind: 'subscription', name: sub, status: 'healthy' });
    expect(local.replication_lag_bytes).not.toBeNull();
    expect(local.replication_observed_at).toBeInstanceOf(Date);
    // the peer's row: what its probe saw, no replication rows
    expect(rows[0]).toMatchObject({ node_id: source, replication: [], replication_lag_bytes: null, replication_observed_at: null });

    await query(pair.target.url, "UPDATE steep_repl.nodes SET status = 'unreachable' WHERE node_id = $1", [source]);
    const [peer] = await query(pair.target.url, 'SELECT health, health_reason FROM steep_repl.node_overview WHERE node_id = $1', [source]);
    expect(peer).toEqual({ health: 'unreachable', health_reason: 'the last probe from this node could not reach it' });
    await query(pair.target.url, "UPDATE steep_repl.nodes SET status = 'unknown' WHERE node_id = $1", [source]);
  });

  it('refuses bad sources with SR004 and records nothing', async () => {
    await observe(pair.target.url, await sourceFacts(pair));
    const before = await recorded(pair.target.url);
    const cases: Array<[unknown, RegExp]> = [
      [[], /JSON object keyed by subscription name, not a JSON array/],
      ['text', /not a JSON string/],
      [null, /not a JSON null/],
      [{ [sub]: 1 }, /subscription steep_\w+ are a JSON number instead of an object/],
      [{ 'odd "sub"': [] }, /subscription "odd ""sub""" are a JSON array instead of an object/],
      [{ [sub]: { current_lsn: 'zz' } }, /current_lsn zz, not an LSN/],
      [{ [sub]: { confirmed_flush_lsn: '0/1' } }, /current_lsn missing/],
      [{ [sub]: { current_lsn: 5 } }, /current_lsn 5, not an LSN/],
      [{ [sub]: { current_lsn: '0/1', confirmed_flush_lsn: '1-2' } }, /confirmed_flush_lsn 1-2, not an LSN or null/],
      [{ [sub]: { current_lsn: '0/1', slot_active: 'yes' } }, /slot_active yes, not true, false or null/],
      [{ [sub]: { current_lsn: '0/1', Extra: 1 } }, /unknown key\(s\) "Extra"/],
      [{ [sub]: { error: 5 } }, /an error that is no string/],
      [{ [sub]: { error: 'x', current_lsn: '0/1' } }, /key\(s\) current_lsn beside error/],
      [{ [sub]: { current_lsn: '0/1', slot_exists: 'yes' } }, /slot_exists yes, not true, false or null/],
      [{ [sub]: { current_lsn: '0/1', confirmed_flush_lsn: '0/1', slot_exists: false } }, /inconsistent: slot_exists false beside a confirmed_flush_lsn/],
      [{ [sub]: { current_lsn: '0/1', slot_active: true, slot_exists: false } }, /inconsistent: slot_exists false beside .* slot_active true/],
    ];
    for (const [sources, message] of cases) {
      const err = await refusal(pair.target.url, 'SELECT * FROM steep_repl.observe_replication($1::jsonb)', [JSON.stringify(sources)]);
      expect({ sources, code: err.code, message: err.message }).toEqual({ sources, code: 'SR004', message: expect.stringMatching(message) });
      expect(err.hint).toContain('current_lsn');
    }
    expect(await recorded(pair.target.url)).toEqual(before);
    // a subscription the agent listed that is gone since is no error
    await observe(pair.target.url, { no_such_subscription: { error: 'gone' } });
  });

  it('emits one event per change of the problem set, never per round', async () => {
    const facts = await sourceFacts(pair);
    await observe(pair.target.url, facts);
    expect(await events(pair.target.url, sub)).toEqual([]);

    await alterSub('DISABLE');
    for (let i = 0; i < 3; i++) await observe(pair.target.url, facts);
    let seen = await events(pair.target.url, sub);
    expect(seen).toEqual([
      {
        event: 'replication.degraded',
        node_id: target,
        details: {
          kind: 'subscription',
          name: sub,
          peer_node_id: source,
          problems: ['disabled'],
          reason: `subscription ${sub} from node "Health ""Src"" ü" is disabled: nothing replicates; enable it with ALTER SUBSCRIPTION ${sub} ENABLE`,
        },
      },
    ]);
    let [row] = await observe(pair.target.url, facts);
    expect(row).toMatchObject({ status: 'degraded', problems: ['disabled'], worker_pid: null, worker_missing_since: null });
    expect(row.degraded_since).not.toBeNull();
    const since = row.degraded_since;
    // node status follows: the round sets it, so does the heartbeat
    expect((await query(pair.target.url, 'SELECT status FROM steep_repl.nodes WHERE is_local'))[0].status).toBe('degraded');
    expect((await query(pair.target.url, 'SELECT (steep_repl.heartbeat()).status'))[0].status).toBe('degraded');
    const [overview] = await query(pair.target.url, 'SELECT health, health_reason FROM steep_repl.node_overview WHERE is_local');
    expect(overview).toEqual({ health: 'degraded', health_reason: row.reason });

    // another set: one more event; the same set with other numbers: none
    const unreachable = { [sub]: { error: 'connection to server at "db1" (10.0.0.1), port 5432 failed: password=sekret timeout' } };
    for (let i = 0; i < 2; i++) [row] = await observe(pair.target.url, unreachable);
    expect(row.problems).toEqual(['disabled', 'source_unreachable']);
    expect(row.reason).toContain('cannot reach source node "Health ""Src"" ü" to measure lag: connection to server at "db1"');
    expect(row.reason).not.toContain('sekret');
    expect(row.lag_bytes).toBeNull();
    expect(row.degraded_since).toBe(since);
    [row] = await observe(pair.target.url, { [sub]: { error: 'another error' } });
    seen = await events(pair.target.url, sub);
    expect(seen.map((e) => [e.event, e.details.problems ?? e.details.previous_problems])).toEqual([
      ['replication.degraded', ['disabled']],
      ['replication.degraded', ['disabled', 'source_unreachable']],
    ]);

    // recovered once, with what it was
    await alterSub('ENABLE');
    for (let i = 0; i < 3; i++) [row] = await observe(pair.target.url, facts);
    expect(row).toMatchObject({ status: 'healthy', problems: [], reason: null, degraded_since: null });
    seen = await events(pair.target.url, sub);
    expect(seen).toHaveLength(3);
    expect(seen[2]).toEqual({
      event: 'replication.recovered',
      node_id: target,
      details: {
        kind: 'subscription',
        name: sub,
        peer_node_id: source,
        previous_problems: ['disabled', 'source_unreachable'],
        previous_reason: expect.stringContaining('another error'),
      },
    });
    expect((await query(pair.target.url, 'SELECT status FROM steep_repl.nodes WHERE is_local'))[0].status).toBe('healthy');
  });

  it('an enabled subscription without a worker for worker_missing_seconds is degraded', async () => {
    // a worker that cannot connect (nothing listens on port 1) exits at once and counts no apply error
    const conninfo = nodeConninfo({ host: pair.source.cluster.host, port: pair.source.cluster.port, dbname: pair.source.name, user: pair.source.cluster.user });
    await alterSub(`CONNECTION ${escapeLiteral('host=127.0.0.1 port=1 dbname=nowhere connect_timeout=1')}`);
    try {
      await query(pair.target.url, 'UPDATE steep_repl.health_settings SET worker_missing_seconds = 1');
      const row = await waitUntil(
        'worker_missing',
        async () => {
          const [r] = await observe(pair.target.url);
          return r.problems.includes('worker_missing') && r;
        },
        30000,
        300,
      );
      expect(row.worker_pid).toBeNull();
      expect(row.worker_missing_since).not.toBeNull();
      expect(row.reason).toMatch(
        new RegExp(`^no apply worker for ${sub} for \\d+ s: see the server log of node "health tgt select" \\(max_logical_replication_workers\\?\\)$`),
      );
    } finally {
      await alterSub(`CONNECTION ${escapeLiteral(conninfo)}`);
      await resetSettings(pair.target.url);
    }
    await waitUntil('the worker back', async () => (await observe(pair.target.url))[0].worker_pid, 30000, 300);
    const [row] = await observe(pair.target.url);
    expect(row).toMatchObject({ worker_missing_since: null, status: 'healthy' });
  });

  it('lag in time: interpolated between the samples around the confirmed position, a lower bound before the oldest', async () => {
    await observe(pair.target.url);
    // a crafted history: the source at 0/1000000 100 s ago, at 0/2000000 50 s ago
    await query(pair.target.url, 'DELETE FROM steep_repl.replication_health_history WHERE name = $1', [sub]);
    await query(
      pair.target.url,
      `INSERT INTO steep_repl.replication_health_history (kind, name, observed_at, source_lsn, lag_bytes) VALUES
         ('subscription', $1, now() - interval '100 seconds', '0/1000000', 0),
         ('subscription', $1, now() - interval '50 seconds', '0/2000000', 4194304)`,
      [sub],
    );
    let [row] = await observe(pair.target.url, { [sub]: { current_lsn: '0/3000000', confirmed_flush_lsn: '0/1C00000', slot_active: true } });
    expect(row.lag_bytes).toBe(0x1400000);
    // at 0/1C00000 the source was 3/4 of the way: 100 - 37.5 s ago
    expect(row.lag_seconds).toBeGreaterThanOrEqual(62.5);
    expect(row.lag_seconds).toBeLessThan(64);
    // 20 MB against 4 MB a minute ago (the closest sample): growing
    expect(row.lag_trend).toBe('growing');

    // below every sample: the oldest sample's age, a lower bound
    [row] = await observe(pair.target.url, { [sub]: { current_lsn: '0/3000000', confirmed_flush_lsn: '0/800000', slot_active: true } });
    expect(row.lag_seconds).toBeGreaterThanOrEqual(100);
    expect(row.lag_seconds).toBeLessThan(102);

    // over lag_seconds and lag_bytes: both problems, in words
    await query(pair.target.url, 'UPDATE steep_repl.health_settings SET lag_seconds = 60, lag_bytes = 1048576');
    [row] = await observe(pair.target.url, { [sub]: { current_lsn: '0/3000000', confirmed_flush_lsn: '0/800000', slot_active: true } });
    expect(row.problems).toEqual(['lag_bytes', 'lag_seconds']);
    // below every sample: a lower bound, said so (no "by HH:MM:SS" claim)
    expect(row.lag_seconds_at_least).toBe(true);
    expect(row.reason).toMatch(
      /^lag 40 MB and growing \(more than 1024 kB\): node "health tgt select" applies more slowly than node "Health ""Src"" ü" writes; .*; lag more than 1 min: node "health tgt select" has applied nothing node "Health ""Src"" ü" wrote in the last 1 min$/,
    );
    // between two samples: the time the source was there
    [row] = await observe(pair.target.url, { [sub]: { current_lsn: '0/3000000', confirmed_flush_lsn: '0/1800000', slot_active: true } });
    expect(row.lag_seconds_at_least).toBe(false);
    expect(row.reason).toMatch(
      /; lag 1 min \(more than 1 min\): node "health tgt select" applied what node "Health ""Src"" ü" had written by \d\d:\d\d:\d\d$/,
    );

    // caught up: 0 s, and steady against a sample of the same lag
    await resetSettings(pair.target.url);
    [row] = await observe(pair.target.url, { [sub]: { current_lsn: '0/3000000', confirmed_flush_lsn: '0/3000000', slot_active: true } });
    expect(row).toMatchObject({ lag_bytes: 0, lag_seconds: 0, lag_seconds_at_least: false, problems: [] });
    await query(pair.target.url, 'DELETE FROM steep_repl.replication_health_history WHERE name = $1', [sub]);
    await query(
      pair.target.url,
      "INSERT INTO steep_repl.replication_health_history (kind, name, observed_at, lag_bytes) VALUES ('subscription', $1, now() - interval '61 seconds', 10485760)",
      [sub],
    );
    [row] = await observe(pair.target.url, { [sub]: { current_lsn: '0/3000000', confirmed_flush_lsn: '0/2700000', slot_active: true } });
    expect([row.lag_bytes, row.lag_trend]).toEqual([0x900000, 'steady']);
    [row] = await observe(pair.target.url, { [sub]: { current_lsn: '0/3000000', confirmed_flush_lsn: '0/2F00000', slot_active: true } });
    expect(row.lag_trend).toBe('shrinking');
    // not asked: no lag at all
    [row] = await observe(pair.target.url);
    expect(row).toMatchObject({ lag_bytes: null, lag_seconds: null, lag_seconds_at_least: null, lag_trend: null, source_lsn: null, source_error: null });
  });

  // Crafted rounds: the stored row is what the next round compares with, so
  // lowering its counter is an error the next round counts, and moving its
  // timestamps back is time passing.
  const shiftSub = (set: string) => query(pair.target.url, `UPDATE steep_repl.replication_health SET ${set} WHERE kind = 'subscription'`);
  const at = (confirmed: string | null, current = '0/9000000'): Record<string, SourceFacts> => ({
    [sub]: { current_lsn: current, confirmed_flush_lsn: confirmed, slot_active: confirmed !== null, slot_exists: true },
  });
  const since = async (before: number) =>
    (await events(pair.target.url, sub)).slice(before).map((e) => [e.event, e.details.problems ?? e.details.previous_problems]);
  const freshStart = async () => {
    await resetSettings(pair.target.url);
    await query(pair.target.url, 'DELETE FROM steep_repl.replication_health_history WHERE name = $1', [sub]);
    await shiftSub('apply_errors_changed_at = NULL, apply_errors_lsn = NULL, sync_errors_changed_at = NULL, source_error_since = NULL');
    const [row] = await observe(pair.target.url, at('0/9000000'));
    expect(row.problems).toEqual([]);
    return (await events(pair.target.url, sub)).length;
  };
  // replication_problems on the stored row with some facts changed
  const decide = async (url: string, kind: string, patch: Record<string, unknown>): Promise<{ problems: string[]; reason: string | null }> =>
    (
      await query(
        url,
        `SELECT p.problems, p.reason FROM steep_repl.replication_health h
           CROSS JOIN LATERAL steep_repl.replication_problems(jsonb_populate_record(h, $2::jsonb),
                                                              (SELECT hs FROM steep_repl.health_settings hs), interval '15 seconds') p
          WHERE h.kind = $1`,
        [kind, JSON.stringify(patch)],
      )
    )[0];
  const ago = (seconds: number) => new Date(Date.now() - seconds * 1000).toISOString();

  it('apply errors end once quiet and the slot moved past the last error: a long failure cycle does not flap', async () => {
    const before = await freshStart();
    const rise = () => shiftSub('apply_error_count = apply_error_count - 1');
    const later = (seconds: number) => shiftSub(`apply_errors_changed_at = apply_errors_changed_at - interval '${seconds} seconds'`);

    await rise();
    let [row] = await observe(pair.target.url, at('0/8000000'));
    expect(row).toMatchObject({ problems: ['apply_errors'], apply_errors_lsn: '0/8000000' });
    expect(row.reason).toMatch(/^apply worker failing: 1 error in 5 min — /);
    // an error every 20 s (longer than the quiet period), the position still: degraded throughout
    for (let i = 0; i < 3; i++) {
      await later(20);
      [row] = await observe(pair.target.url, at('0/8000000'));
      expect(row.problems).toEqual(['apply_errors']);
      await rise();
      [row] = await observe(pair.target.url, at('0/8000000'));
      expect(row.problems).toEqual(['apply_errors']);
    }
    await later(20);
    [row] = await observe(pair.target.url, at('0/8000000'));
    expect(row.problems).toEqual(['apply_errors']);
    // the slot moved past it: the failed transaction went through
    [row] = await observe(pair.target.url, at('0/8000100'));
    expect(row.problems).toEqual([]);
    expect(await since(before)).toEqual([
      ['replication.degraded', ['apply_errors']],
      ['replication.recovered', ['apply_errors']],
    ]);

    // the position still, but no error for the whole error window: over
    await rise();
    expect((await observe(pair.target.url, at('0/8000100')))[0].problems).toEqual(['apply_errors']);
    await later(299);
    expect((await observe(pair.target.url, at('0/8000100')))[0].problems).toEqual(['apply_errors']);
    await later(2);
    expect((await observe(pair.target.url, at('0/8000100')))[0].problems).toEqual([]);
    // caught up (no lag left), or the position unknown (source not asked): over once quiet
    for (const quietRound of [at('0/9000000'), {}]) {
      await rise();
      expect((await observe(pair.target.url, at('0/8000100')))[0].problems).toEqual(['apply_errors']);
      await later(20);
      expect((await observe(pair.target.url, quietRound))[0].problems).toEqual([]);
    }
    expect((await since(before)).map(([event]) => event)).toEqual(Array(4).fill(['replication.degraded', 'replication.recovered']).flat());
  });

  it('table sync errors end once quiet and no table is left to sync, at most the error window', async () => {
    await freshStart();
    const failing = { sync_errors_changed_at: ago(1), tables_syncing: 0, problems: [] };
    expect((await decide(pair.target.url, 'subscription', failing)).problems).toEqual(['sync_errors']);
    const quiet = { ...failing, sync_errors_changed_at: ago(20), problems: ['sync_errors'] };
    expect((await decide(pair.target.url, 'subscription', { ...quiet, tables_syncing: 1 })).problems).toEqual(['sync_errors']);
    expect((await decide(pair.target.url, 'subscription', quiet)).problems).toEqual([]);
    // not present before: a quiet counter starts none
    expect((await decide(pair.target.url, 'subscription', { ...quiet, tables_syncing: 1, problems: [] })).problems).toEqual([]);
    expect((await decide(pair.target.url, 'subscription', { ...quiet, tables_syncing: 1, sync_errors_changed_at: ago(301) })).problems).toEqual([]);
    expect((await decide(pair.target.url, 'subscription', { tables_syncing: 0 })).problems).toEqual([]);
  });

  it('a threshold crossed ends only 10 % on the good side of it (lag in bytes and time)', async () => {
    const before = await freshStart();
    await query(pair.target.url, 'UPDATE steep_repl.health_settings SET lag_bytes = 10485760');
    const lag = (mib: number) => at(`0/${(0x9000000 - Math.round(mib * 1048576)).toString(16).toUpperCase()}`);
    try {
      let [row] = await observe(pair.target.url, lag(11));
      expect(row.problems).toEqual(['lag_bytes']);
      expect(row.reason).toMatch(/^lag 11 MB( and \w+)? \(more than 10 MB\): /);
      [row] = await observe(pair.target.url, lag(9.5));
      expect(row.problems).toEqual(['lag_bytes']);
      expect(row.reason).toMatch(/^lag 9728 kB( and \w+)? \(was more than 10 MB; healthy again below 9216 kB\): /);
      [row] = await observe(pair.target.url, lag(9.01));
      expect(row.problems).toEqual(['lag_bytes']);
      [row] = await observe(pair.target.url, lag(8.9));
      expect(row.problems).toEqual([]);
      // below the threshold but not present: no problem either
      [row] = await observe(pair.target.url, lag(9.9));
      expect(row.problems).toEqual([]);
      [row] = await observe(pair.target.url, lag(10.1));
      expect(row.problems).toEqual(['lag_bytes']);
    } finally {
      await resetSettings(pair.target.url);
    }
    expect((await observe(pair.target.url, at('0/9000000')))[0].problems).toEqual([]);
    expect(await since(before)).toEqual([
      ['replication.degraded', ['lag_bytes']],
      ['replication.recovered', ['lag_bytes']],
      ['replication.degraded', ['lag_bytes']],
      ['replication.recovered', ['lag_bytes']],
    ]);

    // in time (lag_seconds 300): present until below 270 s
    const inTime = (seconds: number, present: boolean) =>
      decide(pair.target.url, 'subscription', { lag_bytes: 1, lag_seconds: seconds, lag_seconds_at_least: false, problems: present ? ['lag_seconds'] : [] });
    expect(await inTime(301, false)).toEqual({ problems: ['lag_seconds'], reason: expect.stringMatching(/^lag 5 min \(more than 5 min\): /) });
    expect(await inTime(290, false)).toEqual({ problems: [], reason: null });
    expect(await inTime(275, true)).toEqual({
      problems: ['lag_seconds'],
      reason: expect.stringMatching(/^lag 4 min \(was more than 5 min; healthy again below 4 min\): node "health tgt select" applied what node "Health ""Src"" ü" had written by \d\d:\d\d:\d\d$/),
    });
    expect(await inTime(269, true)).toEqual({ problems: [], reason: null });
  });

  it('slot thresholds keep the same hysteresis: retained ends below 90 %, safe_wal_size above 110 %', async () => {
    await observe(pair.source.url);
    const gib = 1024 ** 3;
    const retained = (g: number, present: boolean) =>
      decide(pair.source.url, 'slot', { retained_bytes: Math.round(g * gib), wal_status: 'reserved', problems: present ? ['slot_retained'] : [] });
    expect((await retained(10.2, false)).reason).toMatch(/^slot \w+ for node "health tgt select" retains 10 GB of WAL \(more than 10 GB\): node "health tgt select" lags or is away$/);
    expect((await retained(9.5, false)).problems).toEqual([]);
    expect((await retained(9.5, true)).reason).toMatch(/ retains 9728 MB of WAL \(was more than 10 GB; healthy again below 9216 MB\): /);
    expect((await retained(8.9, true)).problems).toEqual([]);

    const safe = (g: number, present: boolean) =>
      decide(pair.source.url, 'slot', { safe_wal_size: Math.round(g * gib), wal_status: 'reserved', retained_bytes: 0, problems: present ? ['slot_safe_wal'] : [] });
    expect(await safe(0.9, false)).toEqual({
      problems: ['slot_safe_wal'],
      reason: expect.stringMatching(
        /^slot \w+ for node "health tgt select" can retain only 922 MB more WAL \(less than 1024 MB\) before max_slot_wal_keep_size removes WAL node "health tgt select" needs: let node "health tgt select" catch up, or raise max_slot_wal_keep_size$/,
      ),
    });
    expect((await safe(1.05, false)).problems).toEqual([]);
    expect((await safe(1.05, true)).reason).toMatch(/only 1075 MB more WAL \(was less than 1024 MB; healthy again above 1126 MB\) /);
    expect((await safe(1.11, true)).problems).toEqual([]);
    // no max_slot_wal_keep_size: no safe_wal_size, no problem
    expect((await decide(pair.source.url, 'slot', { safe_wal_size: null, problems: ['slot_safe_wal'] })).problems).toEqual([]);
  });

  it('a source is unreachable after two failed rounds in a row', async () => {
    const before = await freshStart();
    const down = { [sub]: { error: 'connection to server at "db1" (10.0.0.1), port 5432 failed: timeout expired' } };
    let [row] = await observe(pair.target.url, down);
    expect(row).toMatchObject({ problems: [], source_error: expect.stringContaining('timeout expired'), source_error_since: row.observed_at });
    [row] = await observe(pair.target.url, at('0/9000000'));
    expect(row).toMatchObject({ problems: [], source_error: null, source_error_since: null });
    [row] = await observe(pair.target.url, down);
    expect(row.problems).toEqual([]);
    [row] = await observe(pair.target.url, down);
    expect(row.problems).toEqual(['source_unreachable']);
    expect(row.reason).toBe(
      'cannot reach source node "Health ""Src"" ü" to measure lag: connection to server at "db1" (10.0.0.1), port 5432 failed: timeout expired',
    );
    [row] = await observe(pair.target.url, at('0/9000000'));
    expect(row.problems).toEqual([]);
    expect(await since(before)).toEqual([
      ['replication.degraded', ['source_unreachable']],
      ['replication.recovered', ['source_unreachable']],
    ]);
  });

  it('a source reached without the subscription\'s slot: source_slot_missing', async () => {
    const before = await freshStart();
    const gone = { [sub]: { current_lsn: '0/9000000', confirmed_flush_lsn: null, slot_active: null, slot_exists: false } };
    let [row] = await observe(pair.target.url, gone);
    expect(row).toMatchObject({ problems: ['source_slot_missing'], source_slot_exists: false, lag_bytes: null, lag_seconds: null });
    expect(row.reason).toBe(
      `the slot ${sub} of subscription ${sub} is missing on source node "Health ""Src"" ü": nothing can replicate; ` +
        `initialize node "health tgt select" again (steep-repl node start 'health tgt select' --from 'Health "Src" ü' --force)`,
    );
    // disabled as well: both said
    await alterSub('DISABLE');
    try {
      [row] = await observe(pair.target.url, gone);
      expect(row.problems).toEqual(['disabled', 'source_slot_missing']);
      // no ENABLE advice: with the slot gone, enabling cannot help
      expect(row.reason).toMatch(new RegExp(`^subscription ${sub} from node "Health ""Src"" ü" is disabled, and enabling it cannot help: its slot is gone; the slot `));
      expect(row.reason).not.toContain('ENABLE');
    } finally {
      await alterSub('ENABLE');
    }
    [row] = await observe(pair.target.url, at('0/9000000'));
    expect(row).toMatchObject({ problems: [], source_slot_exists: true });
    expect((await since(before)).map(([event]) => event)).toEqual(['replication.degraded', 'replication.degraded', 'replication.recovered']);
  });

  it('a subscription disabled by a failed init points at the init, not at ENABLE', async () => {
    await freshStart();
    const moveTo = async (...states: string[]) => {
      for (const state of states) await query(pair.target.url, 'SELECT steep_repl.transition($1, $2)', [target, state]);
    };
    await moveTo('uninitialized', 'preparing', 'failed');
    await alterSub('DISABLE');
    try {
      const [row] = await observe(pair.target.url, at('0/9000000'));
      expect(row.problems).toEqual(['disabled']);
      expect(row.reason).toBe(
        `subscription ${sub} from node "Health ""Src"" ü" is disabled: the init of node "health tgt select" failed ` +
          `(steep-repl node status 'health tgt select'); start it again with steep-repl node start 'health tgt select' --from 'Health "Src" ü' --force, ` +
          `or cancel it (steep-repl node cancel 'health tgt select')`,
      );
    } finally {
      await alterSub('ENABLE');
      await moveTo('preparing', 'copying', 'catching_up', 'synchronized');
      await query(pair.target.url, 'UPDATE steep_repl.nodes SET init_source_node = $2 WHERE node_id = $1', [target, source]);
    }
    expect((await observe(pair.target.url, at('0/9000000')))[0].problems).toEqual([]);
  });

  it('trims the history to history_seconds', async () => {
    await query(pair.target.url, 'UPDATE steep_repl.health_settings SET error_window_seconds = 10, lag_seconds = 10, history_seconds = 20');
    try {
      await query(
        pair.target.url,
        `INSERT INTO steep_repl.replication_health_history (kind, name, observed_at)
         SELECT 'subscription', $1, now() - g * interval '1 second' FROM generate_series(5, 600, 5) g`,
        [sub],
      );
      const before = (await query(pair.target.url, 'SELECT count(*)::int AS n FROM steep_repl.replication_health_history WHERE name = $1', [sub]))[0].n;
      await observe(pair.target.url);
      const [h] = await query(
        pair.target.url,
        `SELECT count(*)::int AS n, count(*) FILTER (WHERE observed_at < now() - interval '21 seconds')::int AS older
           FROM steep_repl.replication_health_history WHERE name = $1`,
        [sub],
      );
      expect(before).toBeGreaterThan(100);
      expect(h.older).toBe(0);
      // the crafted samples of the last 20 s, the rounds of the tests before, this round's
      expect(h.n).toBeLessThan(20);
    } finally {
      await resetSettings(pair.target.url);
    }
  });

  it('a slot retaining more than slot_retained_bytes, or unused for slot_inactive_seconds, degrades the source', async () => {
    await query(pair.source.url, 'UPDATE steep_repl.health_settings SET slot_retained_bytes = 1');
    await query(pair.source.url, 'CREATE TABLE public.filler AS SELECT g FROM generate_series(1, 1000) g');
    try {
      let [slot] = await observe(pair.source.url);
      expect(slot.problems).toEqual(['slot_retained']);
      expect(slot.reason).toMatch(
        new RegExp(`^slot ${sub} for node "health tgt select" retains \\d+ (bytes|kB|MB) of WAL \\(more than 1 bytes\\): node "health tgt select" lags or is away$`),
      );
      await query(pair.source.url, "UPDATE steep_repl.nodes SET last_seen = now() WHERE is_local");
      const [overview] = await query(pair.source.url, 'SELECT health, health_reason FROM steep_repl.node_overview WHERE is_local');
      expect(overview).toEqual({ health: 'degraded', health_reason: slot.reason });

      await resetSettings(pair.source.url);
      await query(pair.source.url, 'UPDATE steep_repl.health_settings SET slot_inactive_seconds = 1');
      await alterSub('DISABLE');
      slot = await waitUntil('the slot unused for a second', async () => {
        const [s] = await observe(pair.source.url);
        return s.problems.includes('slot_inactive') && s;
      }, 20000, 300);
      expect(slot.slot_active).toBe(false);
      expect(slot.inactive_seen_since).not.toBeNull();
      expect(slot.reason).toMatch(new RegExp(`^slot ${sub} for node "health tgt select" not in use for \\d+ s: its subscription is disabled, node "health tgt select" is down, or an init of node "health tgt select" still copies$`));
      await alterSub('ENABLE');
      slot = await waitUntil('the slot in use again', async () => {
        const [s] = await observe(pair.source.url);
        return s.slot_active ? s : undefined;
      });
      expect(slot).toMatchObject({ status: 'healthy', inactive_seen_since: null });
      expect((await events(pair.source.url, sub)).map((e) => e.event)).toEqual([
        'replication.degraded',
        'replication.recovered',
        'replication.degraded',
        'replication.recovered',
      ]);
    } finally {
      await resetSettings(pair.source.url);
      await query(pair.source.url, 'DROP TABLE IF EXISTS public.filler');
      await alterSub('ENABLE').catch(() => undefined);
    }
  });

  it('a prepared slot retaining too much says how to use it or drop it', async () => {
    const slot = `health_sql_prepared_${process.pid}`;
    await query(pair.source.url, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);
    await query(
      pair.source.url,
      "INSERT INTO steep_repl.init_slots (slot_name, for_node, purpose, expires_at) VALUES ($1, $2, 'reverse', '2031-02-03 04:05:00+00')",
      [slot, target],
    );
    await query(pair.source.url, 'UPDATE steep_repl.health_settings SET slot_retained_bytes = 1');
    await query(pair.source.url, "SELECT pg_logical_emit_message(false, 'health', 'some WAL')");
    try {
      const preparedRow = async () => (await observe(pair.source.url)).find((r) => r.name === slot)!;
      let row = await preparedRow();
      expect(row).toMatchObject({ kind: 'slot', prepared: true, peer_node_id: target, slot_active: false, problems: ['slot_retained'] });
      const expires = (await query(pair.source.url, "SELECT to_char(timestamptz '2031-02-03 04:05:00+00', 'YYYY-MM-DD HH24:MI TZ') AS t"))[0].t;
      expect(row.reason).toMatch(
        new RegExp(
          `^slot ${slot} prepared for node "health tgt select" retains \\d+ (bytes|kB|MB) of WAL \\(more than 1 bytes\\): ` +
            `start the init of node "health tgt select" from node "Health ""Src"" ü" \\(steep-repl node start 'health tgt select' --from 'Health "Src" ü'\\), ` +
            `or drop it before it expires at ${expires}: SELECT pg_drop_replication_slot\\('${slot}'\\); DELETE FROM steep_repl.init_slots WHERE slot_name = '${slot}'$`,
        ),
      );
      await query(pair.source.url, "UPDATE steep_repl.init_slots SET purpose = 'manual' WHERE slot_name = $1", [slot]);
      row = await preparedRow();
      expect(row.reason).toMatch(
        new RegExp(
          `^slot ${slot} prepared for node "health tgt select" retains .* of WAL \\(more than 1 bytes\\): ` +
            `complete the manual init of node "health tgt select" \\(steep-repl node complete 'health tgt select'\\) ` +
            `or cancel it \\(steep-repl node cancel 'health tgt select'\\); the slot expires at ${expires}$`,
        ),
      );
    } finally {
      await query(pair.source.url, 'DELETE FROM steep_repl.init_slots WHERE slot_name = $1', [slot]);
      await query(pair.source.url, 'SELECT pg_drop_replication_slot($1)', [slot]);
      await resetSettings(pair.source.url);
      await observe(pair.source.url);
    }
  });

  it('the agent heartbeats but its watch never observed, or stopped: degraded, saying so', async () => {
    const tail = ': an agent older than 0.9.0, --no-health-watch, or failing rounds (health.watch_failed in the agent log)';
    await observe(pair.target.url);
    await query(pair.target.url, 'UPDATE steep_repl.nodes SET replication_observed_at = NULL WHERE is_local');
    await query(pair.target.url, 'SELECT steep_repl.heartbeat()');
    let [local] = await query(pair.target.url, 'SELECT health, health_reason, replication_observed_at FROM steep_repl.node_overview WHERE is_local');
    expect(local).toEqual({
      health: 'degraded',
      health_reason: `the agent heartbeats but its replication watch has not observed yet${tail}`,
      replication_observed_at: null,
    });

    // stale: older than 3 × the interval + 10 s (25 s by default)
    await query(pair.target.url, "UPDATE steep_repl.nodes SET replication_observed_at = now() - interval '24 seconds' WHERE is_local");
    expect((await query(pair.target.url, 'SELECT health FROM steep_repl.node_overview WHERE is_local'))[0].health).toBe('healthy');
    await query(pair.target.url, "UPDATE steep_repl.nodes SET replication_observed_at = now() - interval '30 seconds' WHERE is_local");
    [local] = await query(pair.target.url, 'SELECT health, health_reason FROM steep_repl.node_overview WHERE is_local');
    expect(local.health).toBe('degraded');
    expect(local.health_reason).toMatch(/^the agent heartbeats but its replication watch has not observed for 30 s \(last at \d\d:\d\d:\d\d\): /);
    expect(local.health_reason.endsWith(tail)).toBe(true);

    await observe(pair.target.url);
    expect((await query(pair.target.url, 'SELECT health FROM steep_repl.node_overview WHERE is_local'))[0].health).toBe('healthy');
  });

  it('a real apply error: degraded with the count and the conflict, healthy again once the row is resolved', async () => {
    await query(pair.target.url, 'UPDATE steep_repl.health_settings SET watch_interval_seconds = 0.5');
    const before = (await events(pair.target.url, sub)).length;
    await query(pair.target.url, "INSERT INTO public.accounts (id, balance, note) VALUES (900001, 1, 'written on the target')");
    await query(pair.source.url, "INSERT INTO public.accounts (id, balance, note) VALUES (900001, 2, 'written on the source')");
    const failing = await waitUntil('apply_errors', async () => {
      const [r] = await observe(pair.target.url, await sourceFacts(pair));
      return r.problems.includes('apply_errors') && r;
    }, 30000, 500);
    expect(failing.apply_errors_recent).toBeGreaterThanOrEqual(1);
    expect(failing.reason).toMatch(
      new RegExp(
        `^apply worker failing: \\d+ errors? in 5 min, \\d+ insert_exists conflicts? — see the server log of node "health tgt select" for the row and the transaction's finish LSN; ` +
          `resolve the row, or skip the transaction with ALTER SUBSCRIPTION ${sub} SKIP \\(lsn = '<finish LSN>'\\)`,
      ),
    );
    expect(failing.conflicts_recent!.insert_exists).toBeGreaterThanOrEqual(1);
    // not worker_missing as well, while the worker restarts
    expect(failing.problems).not.toContain('worker_missing');

    await query(pair.target.url, 'DELETE FROM public.accounts WHERE id = 900001');
    const healthy = await waitUntil('healthy again', async () => {
      const [r] = await observe(pair.target.url, await sourceFacts(pair));
      return r.status === 'healthy' && r;
    }, 40000, 500);
    expect(healthy.apply_error_count).toBeGreaterThanOrEqual(1);
    expect((await query(pair.target.url, 'SELECT note FROM public.accounts WHERE id = 900001'))[0].note).toBe('written on the source');
    const seen = (await events(pair.target.url, sub)).slice(before);
    expect(seen.map((e) => e.event)).toEqual(['replication.degraded', 'replication.recovered']);
    expect(seen[1].details.previous_problems).toEqual(['apply_errors']);
    await resetSettings(pair.target.url);
  });

  it('while the node initializes, its subscription disabled or lagging is the init\'s: no problem', async () => {
    const facts = await sourceFacts(pair);
    const behind = Object.fromEntries(
      Object.entries(facts).map(([name, f]) => [name, { ...f, current_lsn: '7F/0', confirmed_flush_lsn: '0/1' }]),
    );
    const moveTo = async (...states: string[]) => {
      for (const state of states) await query(pair.target.url, 'SELECT steep_repl.transition($1, $2)', [target, state]);
    };
    await moveTo('uninitialized', 'preparing', 'copying');
    try {
      await alterSub('DISABLE');
      // (an apply error of the test before may still be within its quiet period: that one counts)
      const initsOwn = (problems: string[]) => problems.filter((p) => ['disabled', 'worker_missing', 'lag_bytes', 'lag_seconds'].includes(p));
      let [row] = await observe(pair.target.url, behind);
      expect(row.enabled).toBe(false);
      expect(initsOwn(row.problems)).toEqual([]);
      expect(Number(row.lag_bytes)).toBeGreaterThan(1024 ** 3);
      // the same facts once the init is over: degraded, both problems named
      await moveTo('catching_up', 'synchronized');
      [row] = await observe(pair.target.url, behind);
      expect(initsOwn(row.problems)).toEqual(['disabled', 'lag_bytes']);
    } finally {
      await alterSub('ENABLE');
      const [node] = await query(pair.target.url, 'SELECT init_state FROM steep_repl.nodes WHERE node_id = $1', [target]);
      if (node.init_state === 'copying') await moveTo('catching_up', 'synchronized');
      await query(pair.target.url, 'UPDATE steep_repl.nodes SET init_source_node = $2 WHERE node_id = $1', [target, source]);
      // the made-up positions leave the samples the other tests read
      await query(pair.target.url, 'DELETE FROM steep_repl.replication_health_history WHERE name = $1', [sub]);
    }
    expect((await observe(pair.target.url, facts))[0].problems).not.toContain('disabled');
  });

  it('a subscription dropped while degraded: its row and history go, with a recovered event saying removed', async () => {
    await alterSub('DISABLE');
    await observe(pair.target.url);
    await alterSub('SET (slot_name = NONE)');
    await query(pair.target.url, `DROP SUBSCRIPTION ${escapeIdentifier(sub)}`);
    expect(await observe(pair.target.url)).toEqual([]);
    const last = (await events(pair.target.url, sub)).pop();
    expect(last).toMatchObject({ event: 'replication.recovered', details: { removed: true, previous_problems: expect.arrayContaining(['disabled']) } });
    expect(await query(pair.target.url, 'SELECT count(*)::int AS n FROM steep_repl.replication_health_history')).toEqual([{ n: 0 }]);
    const [local] = await query(pair.target.url, 'SELECT replication, replication_lag_bytes FROM steep_repl.node_overview WHERE is_local');
    expect(local).toEqual({ replication: [], replication_lag_bytes: null });
  });
});

// PostgreSQL 15: pg_stat_subscription without leader_pid and worker_type,
// pg_stat_subscription_stats without conflict counters. Both databases on
// one 15 cluster (the slot made first: a subscription to its own cluster
// cannot create it).
describe('replication health on PostgreSQL 15', () => {
  let own: OwnClusters<'pg15'>;
  let pair: InitPair;

  beforeAll(async () => {
    own = await startOwnClusters('test-health-sql-pg15', ['pg15'], { versions: { pg15: 15 } });
    pair = await createInitPair({
      tag: 'health_pg15',
      sourceCluster: own.clusters.pg15,
      targetCluster: own.clusters.pg15,
      sourceId: 'Quelle "15"',
      targetId: 'ziel 15',
      rows: 50,
    });
    const name = pair.replicationName;
    const tables = (await query(pair.source.url, 'SELECT label FROM steep_repl.replicated_tables()')).map((r) => r.label);
    await query(pair.source.url, `CREATE PUBLICATION ${escapeIdentifier(name)} FOR TABLE ${tables.join(', ')} WITH (publish_via_partition_root = true)`);
    await query(pair.source.url, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [name]);
    const conninfo = nodeConninfo({ host: pair.source.cluster.host, port: pair.source.cluster.port, dbname: pair.source.name, user: pair.source.cluster.user });
    await query(
      pair.target.url,
      `CREATE SUBSCRIPTION ${escapeIdentifier(name)} CONNECTION '${conninfo.replace(/'/g, "''")}' PUBLICATION ${escapeIdentifier(name)}
       WITH (copy_data = true, create_slot = false, slot_name = '${name}')`,
    );
  });
  afterAll(async () => {
    await pair?.drop().catch(() => undefined);
    await own?.remove();
  });

  it('records subscription and slot facts, conflicts NULL, and decides as on 18', async () => {
    expect(Number((await query(pair.target.url, 'SHOW server_version_num'))[0].server_version_num)).toBeLessThan(160000);
    const sub = pair.replicationName;
    let row = await waitUntil('the apply worker', async () => {
      const [r] = await observe(pair.target.url, await sourceFacts(pair));
      return r.worker_pid ? r : undefined;
    });
    expect(row).toMatchObject({
      kind: 'subscription',
      name: sub,
      peer_node_id: 'Quelle "15"',
      status: 'healthy',
      enabled: true,
      apply_error_count: 0,
      conflicts: null,
      conflicts_recent: null,
    });
    expect(row.lag_bytes).toEqual(expect.any(Number));

    const [slot] = await observe(pair.source.url);
    expect(slot).toMatchObject({ kind: 'slot', name: sub, peer_node_id: 'ziel 15', wal_status: 'reserved', prepared: false });

    await query(pair.target.url, `ALTER SUBSCRIPTION ${escapeIdentifier(sub)} DISABLE`);
    [row] = await observe(pair.target.url, await sourceFacts(pair));
    expect(row.problems).toEqual(['disabled']);
    expect(row.reason).toContain(`enable it with ALTER SUBSCRIPTION ${sub} ENABLE`);
    expect((await events(pair.target.url, sub)).map((e) => e.event)).toEqual(['replication.degraded']);

    // the slot: unused since this watch saw it so (15 has no inactive_since)
    await query(pair.source.url, 'UPDATE steep_repl.health_settings SET slot_inactive_seconds = 1');
    const inactive = await waitUntil('slot_inactive', async () => {
      const [s] = await observe(pair.source.url);
      return s.problems.includes('slot_inactive') && s;
    }, 20000, 300);
    expect(inactive.inactive_seen_since).not.toBeNull();
  });
});
