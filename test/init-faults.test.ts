// What an init says must be what exists: a publication dropped or renamed
// on the source mid-copy and a source table renamed mid-copy fail the init
// (never synchronized) naming what changed; a subscription renamed on the
// target is still found and removed by a cancel whose "nothing left" is a
// check; a source that cannot be reached is said to be unchecked, with what
// may be left; a failure says what exists on the source (wrong password for
// the target server's own connection); --parallel's server setting is put
// back when the init completes, fails or is cancelled. Clusters of this
// file's own: it stops the source and changes the target's server settings.
import { escapeIdentifier, escapeLiteral } from 'pg';
import { Cluster, passwordRole, startCluster, stopCluster } from '../lib/embedded-cluster';
import { OwnClusters, query, startOwnClusters } from './support/clusters';
import { contentHashes, createInitPair, InitPair, initStatus, leftovers, userSchemaSql, waitForCopyInProgress } from './support/init-pair';
import { createNodeDb, dropReplicationObjects, NodeDb, registerIn } from './support/node-pair';
import { AgentProcess, runCli, stopAllAgents } from './support/processes';
import { waitUntil } from './support/wait';

jest.setTimeout(180000);

const password = `Sr-9k!f: p@ss/#?&'ö`;
const leaks = [password, encodeURIComponent(password), 'p@ss', '9k!f'];

describe('init faults: what it reports is what exists', () => {
  let own: OwnClusters<'source' | 'target'>;
  let sourceCluster: Cluster;
  let targetCluster: Cluster;
  let pair: InitPair;
  let agent: AgentProcess;

  const start = (...extra: string[]) => runCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--no-wait', '--db', pair.target.url, ...extra]);
  const cancel = () => runCli(['node', 'cancel', pair.target.id, '--db', pair.target.url]);
  const copying = () => waitForCopyInProgress(pair, { otherTablesDone: true, everyMs: 100 });
  const settled = (state: string) =>
    waitUntil(`the init ${state}`, async () => {
      const s = await initStatus(pair.target);
      return s.state === state && s;
    }, 60000);
  const nothingLeft = async () => expect(await leftovers(pair)).toEqual({ subscriptions: [], slots: [], publications: [] });
  const syncWorkers = async () =>
    (
      await query(
        targetCluster.url(),
        `SELECT s.setting, s.source,
                (SELECT f.setting FROM pg_file_settings f WHERE f.name = s.name AND f.sourcefile LIKE '%postgresql.auto.conf'
                 ORDER BY f.seqno DESC LIMIT 1) AS in_auto_conf
         FROM pg_settings s WHERE s.name = 'max_sync_workers_per_subscription'`,
      )
    )[0];

  beforeAll(async () => {
    own = await startOwnClusters('test-init-faults', ['source', 'target']);
    sourceCluster = own.clusters.source;
    targetCluster = own.clusters.target;
    pair = await createInitPair({
      tag: 'init_faults',
      sourceCluster,
      targetCluster,
      sourceId: 'Quelle "Ä"',
      targetId: 'Ziel b',
      rows: 3000,
      slowRows: 2500,
      slowMsPerRow: 2,
    });
    agent = await AgentProcess.start(pair.target.url, [], { STEEP_REPL_SOURCE_GRACE_MS: '3000' });
  });
  afterAll(async () => {
    await stopAllAgents();
    if (sourceCluster) await startCluster(sourceCluster).catch(() => undefined);
    await pair?.drop();
    await own?.remove();
  });

  it('a publication dropped on the source mid-copy fails the init, never synchronized, naming it and what to do', async () => {
    expect((await start()).code).toBe(0);
    await copying();
    await query(pair.source.url, `DROP PUBLICATION ${escapeIdentifier(pair.replicationName)}`);
    await query(pair.source.url, "INSERT INTO public.accounts VALUES (-1, 1, 'after the drop')");
    const status = await settled('failed');
    expect(status.progress.failure_kind).toBe('error');
    expect(status.progress.error).toContain(`the publication ${pair.replicationName} no longer exists on source node ${pair.source.id}`);
    expect(status.progress.error).toContain('did not reach this node');
    expect(status.progress.error).toMatch(/steep-repl node cancel 'Ziel b'\) and start it again/);
    const states = await query(pair.target.url, "SELECT to_state FROM steep_repl.audit_log WHERE node_id = $1 AND event = 'init.state_change'", [
      pair.target.id,
    ]);
    expect(states.map((s) => s.to_state)).not.toContain('synchronized');
    expect((await cancel()).code).toBe(0);
    await nothingLeft();
    await query(pair.source.url, 'DELETE FROM public.accounts WHERE id = -1');
  });

  it('a publication renamed on the source mid-copy is named with its new name', async () => {
    expect((await start()).code).toBe(0);
    await copying();
    await query(pair.source.url, `ALTER PUBLICATION ${escapeIdentifier(pair.replicationName)} RENAME TO "Renamed pub ✓"`);
    const status = await settled('failed');
    expect(status.progress.error).toContain(`the publication ${pair.replicationName} was renamed to Renamed pub ✓ on source node ${pair.source.id}`);
    // The cancel finds it by oid and drops it under its new name.
    const cancelled = await cancel();
    expect(cancelled.stdout).toContain('nothing it created is left (checked on both nodes)');
    await nothingLeft();
  });

  it('a source table renamed mid-copy is named old → new', async () => {
    expect((await start()).code).toBe(0);
    await copying();
    await query(pair.source.url, 'ALTER TABLE public.accounts RENAME TO "Accounts ✓ ""renamed"""');
    try {
      const status = await settled('failed');
      expect(status.progress.error).toContain(
        `the table public.accounts was renamed to public."Accounts ✓ ""renamed""" on source node ${pair.source.id} during the init (public.accounts → public."Accounts ✓ ""renamed""")`,
      );
      expect(status.progress.error).not.toMatch(/public\.slow/);
      expect((await cancel()).code).toBe(0);
      await nothingLeft();
    } finally {
      await query(pair.source.url, 'ALTER TABLE public."Accounts ✓ ""renamed""" RENAME TO accounts');
    }
  });

  it('a subscription renamed on the target mid-copy is found by oid: the copy goes on, and node cancel removes it, saying so after checking', async () => {
    expect((await start()).code).toBe(0);
    await copying();
    const slowRows = async () => Number((await initStatus(pair.target)).tables.find((t: any) => t.table_name === 'slow').rows_copied);
    const atRename = await slowRows();
    await query(pair.target.url, `ALTER SUBSCRIPTION ${escapeIdentifier(pair.replicationName)} RENAME TO "Renamed sub ✓"`);
    // still copying and reported, not "finished" on an empty table list
    await waitUntil('a report after the rename', async () => (await slowRows()) > atRename);
    expect((await initStatus(pair.target)).state).toBe('copying');
    const cancelled = await cancel();
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toContain(`initialization of ${pair.target.id} cancelled; nothing it created is left (checked on both nodes)`);
    await nothingLeft();
    const [event] = await query(
      pair.target.url,
      "SELECT details FROM steep_repl.audit_log WHERE event = 'init.cancelled' AND node_id = $1 ORDER BY audit_id DESC LIMIT 1",
      [pair.target.id],
    );
    expect(event.details).toMatchObject({ source_checked: true, left_on_source: [], left_on_target: [] });
    expect(event.details.removed).toContain('subscription Renamed sub ✓');
    // No origin of the dropped subscription either.
    expect(await query(pair.target.url, "SELECT roname FROM pg_replication_origin WHERE roname LIKE 'pg\\_%'")).toEqual([]);
  });

  it('a subscription disabled on the target mid-copy fails the init naming it, instead of a copy that never ends', async () => {
    expect((await start()).code).toBe(0);
    await copying();
    await query(pair.target.url, `ALTER SUBSCRIPTION ${escapeIdentifier(pair.replicationName)} DISABLE`);
    const status = await settled('failed');
    expect(status.progress.error).toContain(`while copying: the subscription ${pair.replicationName} is disabled on node ${pair.target.id}`);
    expect(status.progress.error).toContain("--resume enables it again");
    expect((await cancel()).code).toBe(0);
    await nothingLeft();
  });

  it('--parallel is put back when the init fails and when it is cancelled (ALTER SYSTEM SET: it had been set so)', async () => {
    await query(targetCluster.url(), 'ALTER SYSTEM SET max_sync_workers_per_subscription = 3');
    await query(targetCluster.url(), 'SELECT pg_reload_conf()');
    await waitUntil('3 from ALTER SYSTEM', async () => (await syncWorkers()).setting === '3');
    const before = await syncWorkers();
    expect(before).toEqual({ setting: '3', source: 'configuration file', in_auto_conf: '3' });

    // fails by its timeout while copying
    expect((await start('--parallel', '5', '--timeout', '3')).code).toBe(0);
    await waitUntil('5 in effect', async () => (await syncWorkers()).setting === '5');
    const failed = await settled('failed');
    expect(failed.progress.failure_kind).toBe('timeout');
    await waitUntil('the setting put back after the failure', async () => (await syncWorkers()).setting === '3');
    expect(await syncWorkers()).toEqual(before);
    expect((await cancel()).code).toBe(0);
    await nothingLeft();

    // cancelled mid-copy
    expect((await start('--parallel', '6')).code).toBe(0);
    await copying();
    expect((await syncWorkers()).setting).toBe('6');
    expect((await cancel()).code).toBe(0);
    await waitUntil('the setting put back after the cancel', async () => (await syncWorkers()).setting === '3');
    expect(await syncWorkers()).toEqual(before);
    await nothingLeft();
    const restored = agent.lines.filter((l) => l.event === 'init.server_setting_restored');
    expect(restored.slice(-2)).toEqual([
      expect.objectContaining({ from: 5, to: 3, via: 'ALTER SYSTEM SET' }),
      expect.objectContaining({ from: 6, to: 3, via: 'ALTER SYSTEM SET' }),
    ]);
  });

  it('the source down: the failure says it could not be checked and what may exist; the cancel lists what may be left, and that removes it', async () => {
    expect((await start()).code).toBe(0);
    await copying();
    await stopCluster(sourceCluster.dataDir, 'fast');
    try {
      const failed = await settled('failed');
      expect(failed.progress.failure_kind).toBe('connection');
      expect(failed.progress.error).toContain(`The subscription ${pair.replicationName} (disabled) is kept on this node.`);
      expect(failed.progress.error).toContain(`Source node ${pair.source.id} could not be checked`);
      expect(failed.progress.error).toContain(`the publication ${pair.replicationName} may exist there`);
      expect(failed.progress.error).not.toContain('Nothing');

      const cancelled = await cancel();
      expect(cancelled.code).toBe(0);
      expect(cancelled.stdout).toMatch(/the source could not be reached, so run there:/);
      expect(cancelled.stdout).not.toMatch(/nothing it created is left/);
      expect(await query(pair.target.url, 'SELECT subname FROM pg_subscription')).toEqual([]);
      const [event] = await query(
        pair.target.url,
        "SELECT details FROM steep_repl.audit_log WHERE event = 'init.cancelled' AND node_id = $1 ORDER BY audit_id DESC LIMIT 1",
        [pair.target.id],
      );
      expect(event.details).toMatchObject({ source_checked: false, left_on_target: [] });
      expect(event.details.left_on_source).toHaveLength(2);
    } finally {
      await startCluster(sourceCluster);
    }
    // It was left indeed; the listed statements remove it.
    expect((await leftovers(pair)).publications).toEqual([pair.replicationName]);
    const [event] = await query(
      pair.target.url,
      "SELECT details FROM steep_repl.audit_log WHERE event = 'init.cancelled' AND node_id = $1 ORDER BY audit_id DESC LIMIT 1",
      [pair.target.id],
    );
    for (const line of event.details.left_on_source as string[]) await query(pair.source.url, line.replace(/^[a-z ]+: /, ''));
    await nothingLeft();
  });

  describe('a source whose role needs a password the target server does not have', () => {
    let source: NodeDb;
    let target: NodeDb;
    let pwAgent: AgentProcess;

    beforeAll(async () => {
      await query(sourceCluster.url(), `CREATE ROLE ${passwordRole} LOGIN SUPERUSER PASSWORD ${escapeLiteral(password)}`);
      source = await createNodeDb(sourceCluster, 'init_faults_pw_src', 'pw source');
      target = await createNodeDb(targetCluster, 'init_faults_pw_tgt', 'pw target');
      for (const [registry, node] of [
        [source, source],
        [target, target],
        [target, source],
        [source, target],
      ]) {
        // the source is reached as the password role
        await registerIn(registry, node, node === source ? passwordRole : node.cluster.user);
      }
      await query(source.url, userSchemaSql);
      await query(target.url, userSchemaSql);
      await query(source.url, 'INSERT INTO public.accounts SELECT g, g, NULL FROM generate_series(1, 100) g');
      // The agent has the password (PGPASSWORD); the target's server, which
      // makes the subscription's connection, has none.
      pwAgent = await AgentProcess.start(target.url, [], { PGPASSWORD: password });
    });
    afterAll(async () => {
      await pwAgent?.stop();
      await dropReplicationObjects([target, source]);
      await query(targetCluster.url(), `DROP DATABASE IF EXISTS ${target.name} WITH (FORCE)`).catch(() => undefined);
      await query(sourceCluster.url(), `DROP DATABASE IF EXISTS ${source.name} WITH (FORCE)`).catch(() => undefined);
      await query(sourceCluster.url(), `DROP ROLE IF EXISTS ${passwordRole}`).catch(() => undefined);
    });

    it('the failure names the publication that exists on the source, says what to do, and never shows the password', async () => {
      const [{ name }] = await query(target.url, 'SELECT steep_repl.replication_name($1, $2) AS name', [source.id, target.id]);
      const run = await runCli(['node', 'start', target.id, '--from', source.id, '--db', target.url]);
      expect(run.code).toBe(6);
      const status = await initStatus(target);
      expect(status.state).toBe('failed');
      expect(status.progress.failure_kind).toBe('connection');
      const error: string = status.progress.error;
      expect(error).toMatch(/could not connect to the publisher/);
      expect(error).toContain('No subscription exists on this node.');
      expect(error).toContain(`On source node pw source, the publication ${name} exists, kept for the resume.`);
      expect(error).not.toContain('Nothing was created');
      expect(error).toContain(`as user ${passwordRole}`);
      expect(error).toContain('pgpass file of the OS user the target server runs as');
      expect(run.stderr).toContain(`the publication ${name} exists`);
      // It does exist.
      expect(await query(source.url, 'SELECT pubname FROM pg_publication')).toEqual([{ pubname: name }]);
      for (const text of [error, run.stdout, run.stderr, pwAgent.raw.join('\n')]) {
        for (const fragment of leaks) expect(text).not.toContain(fragment);
      }
      const [{ n }] = await query(
        target.url,
        'SELECT count(*)::int AS n FROM steep_repl.audit_log a WHERE strpos(a::text, $1) > 0 OR strpos(a::text, $2) > 0',
        [password, 'p@ss'],
      );
      expect(n).toBe(0);
      const cancelled = await runCli(['node', 'cancel', target.id, '--db', target.url]);
      expect(cancelled.stdout).toContain('nothing it created is left (checked on both nodes)');
      expect(await query(source.url, 'SELECT pubname FROM pg_publication')).toEqual([]);
    });
  });

  it('--parallel is put back when the init completes (RESET: it was the default); last, as the node stays synchronized', async () => {
    await query(targetCluster.url(), 'ALTER SYSTEM RESET max_sync_workers_per_subscription');
    await query(targetCluster.url(), 'SELECT pg_reload_conf()');
    await waitUntil('the default', async () => (await syncWorkers()).source === 'default');
    const before = await syncWorkers();
    expect(before).toEqual({ setting: '2', source: 'default', in_auto_conf: null });

    expect((await start('--parallel', '3')).code).toBe(0);
    await copying();
    expect(await syncWorkers()).toEqual({ setting: '3', source: 'configuration file', in_auto_conf: '3' });
    await settled('synchronized');
    await waitUntil('the setting put back', async () => (await syncWorkers()).source === 'default');
    expect(await syncWorkers()).toEqual(before);
    expect(agent.lines.filter((l) => l.event === 'init.server_setting_restored').pop()).toMatchObject({
      setting: 'max_sync_workers_per_subscription',
      from: 3,
      to: 2,
      via: 'ALTER SYSTEM RESET',
    });
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
  });
});
