// Manual init from the DBA's own pg_basebackup, end to end on PostgreSQL 15
// (Debian's postgresql-15: its pg_basebackup too). The source has a
// subscription of its own (to an upstream database) and another database
// with one; writers write on the source all along. The base backup comes
// first, node prepare after; the copy is restored as a standby with the
// settings prepare printed and promotes at the slot's LSN; node complete
// resets what the clone brought along (says to reset the apply workers'
// setting and restart), then subscribes from the slot: synchronized,
// identical, its own registry (local = the target), no subscription of the
// source's, the upstream's slot untouched. A copy restored without the
// recovery target, and --source-lsn past or behind the copy's end, are
// refused with nothing changed.
import * as path from 'node:path';
import { clusterHandle, freePort } from '../lib/embedded-cluster';
import { backupDir, baseBackup, newestHistory, removeRestored, restoreBaseBackup, RestoredCluster } from './support/backups';
import { createDatabase, OwnClusters, query, startOwnClusters } from './support/clusters';
import { contentHashes, InitPair, initStatus, sourceDataSql, sourceWrites, userSchemaSql, waitCaughtUp } from './support/init-pair';
import { lsnCompare, manualState, preparedSlot, standbySettings, workerErrors } from './support/manual';
import { createNodeDb, NodeDb, registerIn } from './support/node-pair';
import { AgentProcess, runCli, stopAllAgents } from './support/processes';
import { waitUntil } from './support/wait';
import { startWriter, Writer } from './support/writer';

jest.setTimeout(180000);

const rows = 3000;

const subscriptionsOf = async (url: string): Promise<string[]> =>
  (await query(url, 'SELECT subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY 1')).map((r) => r.subname);

describe('manual init from pg_basebackup (PostgreSQL 15)', () => {
  let own: OwnClusters<'source'>;
  let source: NodeDb;
  // the copy as the registry names it (restored later on that port)
  let copyNode: NodeDb;
  let copy: RestoredCluster | undefined;
  let upstream: { name: string; url: string };
  let other: { name: string; url: string };
  let pair: InitPair;
  let work: string;
  let base: string;
  let printed: string;
  let settings: string;
  let lsn: string;
  let writer: Writer | undefined;

  beforeAll(async () => {
    own = await startOwnClusters('test-manual-basebackup', ['source'], { versions: { source: 15 } });
    const cluster = own.clusters.source;
    source = await createNodeDb(cluster, 'man_bb_src', 'Nöde "Quelle" bb', { installer: 'cli' });
    const copyPort = await freePort();
    const copyHandle = clusterHandle(path.join(own.runDir, 'copy'), copyPort);
    copyNode = { id: "Nöde 'Kopie' bb", cluster: copyHandle, name: source.name, url: copyHandle.url(source.name) };
    // the target is registered in the source's registry before it exists
    await registerIn(source, source);
    await registerIn(source, copyNode);
    await query(source.url, userSchemaSql);
    await query(source.url, sourceDataSql(rows));
    await query(source.url, `INSERT INTO public.slow SELECT g, 'slow ' || g FROM generate_series(1, 500) g`);
    await query(source.url, 'ANALYZE');

    // the source's own subscription, enabled, streaming from an upstream
    // database (an empty publication); another database with a disabled one
    upstream = await createDatabase(cluster, 'man_bb_up');
    other = await createDatabase(cluster, 'man_bb_other');
    await query(upstream.url, 'CREATE PUBLICATION up_pub');
    const upConn = `host=${cluster.host} port=${cluster.port} user=${cluster.user} dbname=${upstream.name}`;
    await query(source.url, `CREATE SUBSCRIPTION from_up CONNECTION '${upConn}' PUBLICATION up_pub WITH (connect = false)`);
    await query(upstream.url, "SELECT pg_create_logical_replication_slot('from_up', 'pgoutput')");
    await query(source.url, 'ALTER SUBSCRIPTION from_up ENABLE');
    await query(other.url, `CREATE SUBSCRIPTION other_sub CONNECTION '${upConn}' PUBLICATION up_pub WITH (connect = false)`);
    await waitUntil('the source streaming from upstream', async () => (await query(upstream.url, "SELECT active FROM pg_replication_slots WHERE slot_name = 'from_up'"))[0]?.active);

    const [{ n }] = await query(source.url, 'SELECT steep_repl.replication_name($1, $2) AS n', [source.id, copyNode.id]);
    pair = { source, target: copyNode, replicationName: n, drop: async () => undefined };
    work = backupDir(own.runDir);
    base = path.join(work, 'base');
  });
  afterAll(async () => {
    try {
      await writer?.stop().catch(() => undefined);
      await stopAllAgents();
      await removeRestored();
    } finally {
      await own?.remove();
    }
  });

  it('the base backup first, then prepare: the recovery settings to restore with and the complete command', async () => {
    writer = startWriter(source.url, sourceWrites(rows));
    await waitUntil('writes on the source', () => writer!.counts.transactions > 20 || writer!.error);
    await baseBackup(own.clusters.source, base);

    const prepare = await runCli(['node', 'prepare', copyNode.id, '--from', source.id, '--for', 'pg_basebackup', '--db', source.url]);
    expect(prepare.stderr).not.toMatch(/error/i);
    expect(prepare.code).toBe(0);
    printed = prepare.stdout;
    const [row] = await query(source.url, 'SELECT for_node, purpose, backup, lsn::text AS lsn, snapshot_name, timeline FROM steep_repl.init_slots WHERE slot_name = $1', [
      pair.replicationName,
    ]);
    expect(row).toMatchObject({ for_node: copyNode.id, purpose: 'manual', backup: 'pg_basebackup', snapshot_name: null, timeline: 1 });
    lsn = row.lsn;
    // nothing holds the slot: the copy's subscription will
    expect(await preparedSlot(source, pair.replicationName)).toMatchObject({ active: false, confirmed_flush_lsn: lsn });

    expect(printed).toMatch(/take the base backup first/i);
    expect(printed).toContain(`recovery_target_lsn = '${lsn}'`);
    expect(printed).toContain('recovery_target_inclusive = off');
    expect(printed).toContain('recovery_target_action = promote');
    expect(printed).toContain("recovery_target_timeline = 'current'");
    // the source's server has an enabled subscription: the copy's must not start
    expect(printed).toContain('max_logical_replication_workers = 0');
    expect(printed).toMatch(/primary_conninfo = '[^']*port=\d+/);
    expect(printed).toContain('standby.signal');
    expect(printed).toMatch(/steep-repl node complete .* --db /);
    expect(printed).not.toMatch(/password/i);
    settings = standbySettings(printed);
    expect(settings.split('\n')).toHaveLength(6);
  });

  it('a copy restored without the recovery target is refused by node complete, nothing subscribed', async () => {
    const noTarget = settings
      .split('\n')
      .filter((l) => !l.startsWith('recovery_target'))
      .join('\n');
    const loose = await restoreBaseBackup(base, path.join(own.runDir, 'no-target'), { signal: 'standby', conf: noTarget });
    try {
      // past the prepare (its row came along), then promoted by hand
      await waitUntil('the standby past the slot', async () => {
        const [r] = await query(loose.url(), 'SELECT pg_last_wal_replay_lsn() > $1::pg_lsn AS past', [lsn]);
        return r.past;
      });
      await waitUntil('the prepare row replayed', async () => (await query(loose.url(source.name), 'SELECT count(*)::int AS n FROM steep_repl.init_slots'))[0].n > 0);
      await query(loose.url(), 'SELECT pg_promote()');
      await loose.waitPromoted();
      expect(newestHistory(loose.dataDir)).toMatchObject({ timeline: 2, parent: 1, reason: 'no recovery target specified' });

      const db = { url: loose.url(source.name) };
      const before = await manualState(source, db, pair.replicationName);
      const refused = await runCli(['node', 'complete', copyNode.id, '--db', db.url]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`not "before LSN ${lsn}"`);
      expect(refused.stderr).toMatch(/would arrive twice/);
      expect(await manualState(source, db, pair.replicationName)).toEqual(before);
      expect(await subscriptionsOf(db.url)).toEqual(['from_up']);
      expect(await preparedSlot(source, pair.replicationName)).toMatchObject({ active: false, confirmed_flush_lsn: lsn });
    } finally {
      await loose.remove();
    }
  });

  it('the copy restored with the printed settings promotes just before the slot; --source-lsn past or behind its end is refused, changing nothing', async () => {
    copy = await restoreBaseBackup(base, copyNode.cluster.dataDir, { port: copyNode.cluster.port, signal: 'standby', conf: settings });
    await copy.waitPromoted(60000);
    const history = newestHistory(copy.dataDir)!;
    expect(history).toMatchObject({ timeline: 2, parent: 1 });
    const [, stop] = /^before LSN (\S+)$/.exec(history.reason) ?? [];
    expect(stop).toBeDefined();
    expect(await lsnCompare(source.url, stop, lsn)).toBeGreaterThanOrEqual(0);
    expect(await lsnCompare(source.url, history.switchpoint, lsn)).toBeLessThanOrEqual(0);
    const [{ r: end }] = await query(copyNode.url, 'SELECT steep_repl.recovery_end() AS r');
    const [{ id: system }] = await query(source.url, 'SELECT system_identifier::text AS id FROM pg_control_system()');
    expect(end).toMatchObject({ in_recovery: false, timeline: 2, parent_timeline: 1, stop: 'before', system_identifier: system });
    // the copy's apply workers did not start: the source's slot upstream is still the source's
    expect(await query(copyNode.url, 'SHOW max_logical_replication_workers')).toEqual([{ max_logical_replication_workers: '0' }]);

    const before = await manualState(source, copyNode, pair.replicationName);
    expect(before.target.subscriptions).toEqual(['from_up']);
    // past the copy's end, within the source's WAL (the writer wrote on); only the LSN is wrong: a bad argument
    const past = await waitUntil('the source past the copy', async () => {
      const [{ l }] = await query(source.url, 'SELECT pg_current_wal_lsn()::text AS l');
      return (await lsnCompare(source.url, l, stop)) > 0 && l;
    });
    const pastRefused = await runCli(['node', 'complete', copyNode.id, '--source-lsn', past, '--db', copyNode.url]);
    expect(pastRefused.code).toBe(2);
    expect(pastRefused.stderr).toContain(`which is before the handover point ${past}`);
    expect(await manualState(source, copyNode, pair.replicationName)).toEqual(before);

    const behind = await runCli(['node', 'complete', copyNode.id, '--source-lsn', '0/1', '--db', copyNode.url]);
    expect(behind.code).toBe(2);
    expect(behind.stderr).toMatch(/the changes between 0\/1 and \S+ are gone from it/);
    expect(await manualState(source, copyNode, pair.replicationName)).toEqual(before);
  });

  it('node complete resets the copy and says to restart with apply workers; complete again: synchronized, identical, its own registry', async () => {
    const first = await runCli(['node', 'complete', copyNode.id, '--db', copyNode.url]);
    const said = first.stdout + first.stderr;
    expect(first.code).toBe(1);
    expect(said).toContain('max_logical_replication_workers');
    expect(said).toMatch(/restart/);
    // the other database's subscription, with the statements that remove it
    expect(said).toContain(other.name);
    for (const statement of ['ALTER SUBSCRIPTION other_sub DISABLE', 'ALTER SUBSCRIPTION other_sub SET (slot_name = NONE)', 'DROP SUBSCRIPTION other_sub']) {
      expect(said).toContain(statement);
    }

    // reset: the node is the target now, nothing of the source's is left
    expect(await query(copyNode.url, 'SELECT node_id FROM steep_repl.nodes WHERE is_local')).toEqual([{ node_id: copyNode.id }]);
    expect(await subscriptionsOf(copyNode.url)).toEqual([]);
    expect(await query(copyNode.url, 'SELECT pubname FROM pg_publication')).toEqual([]);
    expect(await query(copyNode.url, 'SELECT * FROM steep_repl.init_slots')).toEqual([]);
    expect(await query(copyNode.url, 'SELECT count(*)::int AS n FROM graphile_worker._private_jobs')).toEqual([{ n: 0 }]);
    expect((await initStatus(copyNode)).state).toBe('preparing');
    const [reset] = await query(copyNode.url, "SELECT details FROM steep_repl.audit_log WHERE event = 'node.copy_reset'");
    expect(reset.details.removed).toContain('subscription from_up');
    // the upstream's slot is the source's, never dropped from the copy
    expect(await query(upstream.url, "SELECT active FROM pg_replication_slots WHERE slot_name = 'from_up'")).toEqual([{ active: true }]);

    // the DBA's part: the other database's subscription, the setting, a restart
    const otherOnCopy = copy!.url(other.name);
    for (const statement of ['ALTER SUBSCRIPTION other_sub DISABLE', 'ALTER SUBSCRIPTION other_sub SET (slot_name = NONE)', 'DROP SUBSCRIPTION other_sub']) {
      await query(otherOnCopy, statement);
    }
    await query(copy!.url(), 'ALTER SYSTEM RESET max_logical_replication_workers');
    await copy!.stop();
    await copy!.start();
    const agent = await AgentProcess.start(copyNode.url);

    const second = await runCli(['node', 'complete', copyNode.id, '--db', copyNode.url]);
    expect(second.stderr).not.toMatch(/error/i);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(`${copyNode.id} is synchronized with ${source.id}`);
    const status = await initStatus(copyNode);
    expect(status.state).toBe('synchronized');
    expect(status.method_state).toMatchObject({ backup: 'pg_basebackup', source_lsn: lsn, copy_data: false });
    expect(status.method_state.recovery_end).toMatchObject({ stop: 'before', timeline: 2 });

    // writes after the handover arrive too
    const after = writer!.counts.transactions;
    await waitUntil('writes after complete', () => writer!.counts.transactions > after + 100 || writer!.error, 60000);
    const { transactions } = await writer!.stop();
    writer = undefined;
    expect(transactions).toBeGreaterThan(200);
    await waitCaughtUp(pair);
    expect(await contentHashes(copyNode.url)).toEqual(await contentHashes(source.url));
    expect(await workerErrors(copyNode.url)).toBe(0);

    // its own registry, only its own subscription, the source's untouched
    expect(await query(copyNode.url, 'SELECT node_id FROM steep_repl.nodes WHERE is_local')).toEqual([{ node_id: copyNode.id }]);
    expect(await query(source.url, 'SELECT node_id FROM steep_repl.nodes WHERE is_local')).toEqual([{ node_id: source.id }]);
    expect(await subscriptionsOf(copyNode.url)).toEqual([pair.replicationName]);
    expect(await subscriptionsOf(otherOnCopy)).toEqual([]);
    expect(await subscriptionsOf(source.url)).toEqual(['from_up']);
    expect(await query(upstream.url, "SELECT active FROM pg_replication_slots WHERE slot_name = 'from_up'")).toEqual([{ active: true }]);
    expect(await preparedSlot(source, pair.replicationName)).toMatchObject({ active: true });
    await agent.stop();
  });
});
