// Snapshot init end to end, for a pair of clusters of any major: source on
// one cluster, target on the other, the target's agent as a real process,
// started from the CLI and from SQL. test/init-snapshot.test.ts runs it on
// the shared PostgreSQL 18 clusters, test/init-snapshot-pg15.test.ts on a
// PostgreSQL 15 pair of its own, where the bidirectional step is refused
// (origin = none needs 16 on both nodes; see test/pg15.test.ts).
import { Cluster } from '../../lib/embedded-cluster';
import { query } from './clusters';
import { followInit } from './init-follower';
import { contentHashes, createInitPair, InitPair, initStatus, leftovers, sourceWrites, userTables, waitCaughtUp } from './init-pair';
import { waitUntil } from './wait';
import { AgentProcess, runCli, stopAllAgents } from './processes';
import { startWriter } from './writer';

export interface SnapshotSuiteClusters {
  source: Cluster;
  target: Cluster;
  // stops and removes clusters the suite's setup started for itself
  remove?: () => Promise<void>;
}

export interface SnapshotSuiteOptions {
  // the describe block's title
  title: string;
  // database names carry it
  tag: string;
  // the pair of clusters, once for the file (beforeAll)
  clusters: () => Promise<SnapshotSuiteClusters>;
  // the servers' major version: before 16 the pair cannot stream both ways
  major: number;
}

export function snapshotInitSuite(options: SnapshotSuiteOptions): void {
  describe(options.title, () => {
    let clusters: SnapshotSuiteClusters | undefined;
    let pair: InitPair;
    let targetAgent: AgentProcess;
    let syncWorkers: string;

    beforeAll(async () => {
      clusters = await options.clusters();
      // --parallel changes a server setting of the target's cluster (shared on 18): put it back after.
      [{ max_sync_workers_per_subscription: syncWorkers }] = await query(clusters.target.url(), 'SHOW max_sync_workers_per_subscription');
      pair = await createInitPair({ tag: options.tag, sourceCluster: clusters.source, targetCluster: clusters.target, slowRows: 1500, slowMsPerRow: 2 });
      targetAgent = new AgentProcess(pair.target.url);
      await targetAgent.waitForEvent('agent.started');
    });
    afterAll(async () => {
      try {
        await stopAllAgents();
        await pair?.drop();
        if (syncWorkers && clusters && !clusters.remove) {
          await query(clusters.target.url(), `ALTER SYSTEM SET max_sync_workers_per_subscription = ${Number(syncWorkers)}`);
          await query(clusters.target.url(), 'SELECT pg_reload_conf()');
        }
      } finally {
        await clusters?.remove?.();
      }
    });

    it('refuses bad options and a wrong database, changing nothing', async () => {
      const auditBefore = await query(pair.target.url, 'SELECT count(*)::int AS n FROM steep_repl.audit_log');
      const bad = await runCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--parallel', '17', '--db', pair.target.url]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/parallel must be a whole number from 1 to 16/);
      const self = await runCli(['node', 'start', pair.target.id, '--from', pair.target.id, '--db', pair.target.url]);
      expect(self.code).toBe(2);
      expect(self.stderr).toMatch(/cannot be initialized from itself/);
      const unknown = await runCli(['node', 'start', pair.target.id, '--from', 'nope', '--db', pair.target.url]);
      expect(unknown.code).toBe(2);
      // start_init runs on the target only.
      await expect(query(pair.source.url, 'SELECT steep_repl.start_init($1, $2)', [pair.target.id, pair.source.id])).rejects.toMatchObject({
        code: 'SR004',
      });
      await expect(
        query(pair.target.url, `SELECT steep_repl.start_init($1, $2, 'snapshot', '{"schema_sync": "loose"}')`, [pair.target.id, pair.source.id]),
      ).rejects.toMatchObject({ code: 'SR004' });
      const [node] = await query(pair.target.url, 'SELECT init_state, init_source_node FROM steep_repl.nodes WHERE node_id = $1', [pair.target.id]);
      expect(node).toEqual({ init_state: 'uninitialized', init_source_node: null });
      expect(await query(pair.target.url, 'SELECT count(*)::int AS n FROM steep_repl.audit_log')).toEqual(auditBefore);
      expect(await query(pair.target.url, 'SELECT * FROM steep_repl.init_progress')).toEqual([]);
      expect(await query(pair.target.url, 'SELECT * FROM graphile_worker._private_jobs')).toEqual([]);
    });

    it('copies under concurrent writes to synchronized with equal content, true progress and a refused second start', async () => {
      // A pg-listen client, as the docs tell other tools to follow progress.
      const following = await followInit(pair.target.url, pair.target.id);
      const progress = following.progress;

      const writer = startWriter(pair.source.url, sourceWrites());
      const start = runCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--parallel', '2', '--db', pair.target.url]);
      await waitUntil('the copy to run', async () => (await initStatus(pair.target)).state === 'copying', 20000, 50);

      // A second start while one runs is refused, from the CLI and from SQL.
      const second = await runCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--db', pair.target.url]);
      expect(second.code).toBe(1);
      expect(second.stderr).toMatch(/already queued or running/);
      await expect(query(pair.target.url, 'SELECT steep_repl.start_init($1, $2)', [pair.target.id, pair.source.id])).rejects.toMatchObject({
        code: 'SR006',
      });

      const result = await start;
      const { transactions } = await writer.stop();
      await following.close();
      expect(result.stderr).not.toMatch(/error/);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/is synchronized with/);
      expect(transactions).toBeGreaterThan(50);

      const status = await initStatus(pair.target);
      expect(status.state).toBe('synchronized');
      expect(status.progress).toMatchObject({ phase: 'done', overall_percent: 100, tables_done: 5, tables_total: 5 });
      for (const table of status.tables) {
        expect(table).toMatchObject({ state: 'done', percent: 100 });
        expect(new Date(table.completed_at).getTime()).toBeGreaterThanOrEqual(new Date(table.started_at).getTime());
        expect(Number(table.bytes_total)).toBeGreaterThan(0);
      }

      // Every change the writer made reached the target, nothing more.
      await waitCaughtUp(pair);
      const [sourceHashes, targetHashes] = [await contentHashes(pair.source.url), await contentHashes(pair.target.url)];
      expect(targetHashes).toEqual(sourceHashes);
      expect(Object.keys(targetHashes)).toEqual(userTables);
      const [seq] = await query(pair.target.url, 'SELECT last_value::int AS v FROM public.ticket_seq');
      expect(seq.v).toBe(4242);
      const [itemsSeq] = await query(pair.target.url, `SELECT last_value::int AS v FROM "Sales ünit"."Order ""Items"" é_Id_seq"`);
      const [sourceItemsSeq] = await query(pair.source.url, `SELECT last_value::int AS v FROM "Sales ünit"."Order ""Items"" é_Id_seq"`);
      expect(itemsSeq.v).toBeGreaterThanOrEqual(10000);
      expect(itemsSeq.v).toBeLessThanOrEqual(sourceItemsSeq.v);

      // Progress: monotonic, reaching 100, streaming while the copy ran and
      // soon after the row change it announces. The bounds leave room for a
      // loaded CI machine; bench init measures the 1 s cadence and latency.
      const percents = progress.map((p) => Number(p.payload.overall_percent));
      expect(percents.length).toBeGreaterThan(3);
      percents.forEach((p, i) => expect(p).toBeGreaterThanOrEqual(i ? percents[i - 1] : 0));
      expect(percents[percents.length - 1]).toBe(100);
      const copying = progress.filter((p) => p.payload.phase === 'copying');
      expect(copying.length).toBeGreaterThan(2);
      for (let i = 1; i < copying.length; i++) expect(copying[i].at - copying[i - 1].at).toBeLessThan(5000);
      for (const p of progress) expect(p.at - new Date(p.payload.updated_at).getTime()).toBeLessThan(5000);
      expect(copying.some((p) => Number(p.payload.overall_percent) > 0 && Number(p.payload.overall_percent) < 100)).toBe(true);

      // The milestones, once each, in the audit trail (and so on NOTIFY).
      const events = (
        await query(pair.target.url, "SELECT event, details FROM steep_repl.audit_log WHERE node_id = $1 AND event LIKE 'init.%' ORDER BY audit_id", [
          pair.target.id,
        ])
      ).map((r) => r.event);
      expect(events[0]).toBe('init.state_change');
      expect(events).toContain('init.started');
      expect(events.filter((e) => e === 'init.table_started')).toHaveLength(5);
      expect(events.filter((e) => e === 'init.table_complete')).toHaveLength(5);
      expect(events.filter((e) => e === 'init.phase_started').length).toBeGreaterThanOrEqual(4);
      expect(events.filter((e) => e === 'init.completed')).toHaveLength(1);
      expect(events[events.length - 1]).toBe('init.completed');
      await targetAgent.waitForEvent('init.completed');
      // The agent logs each milestone once as a JSON line, also those SQL emitted itself.
      const logged = targetAgent.lines.filter((l) => l.node_id === pair.target.id).map((l) => l.event);
      for (const milestone of ['init.started', 'init.state_change', 'init.phase_started', 'init.phase_completed']) {
        expect(logged).toContain(milestone);
      }
      expect(logged.filter((e) => e === 'init.table_started')).toHaveLength(5);
      expect(logged.filter((e) => e === 'init.table_complete')).toHaveLength(5);
      expect(logged.filter((e) => e === 'init.completed')).toHaveLength(1);
      // --parallel 2 was the server's table-sync worker limit during the init,
      // announced, and put back once it completed (init-faults tests the restore).
      expect(status.progress.workers_max).toBe(2);
      await waitUntil('the setting put back', async () => {
        const [{ max_sync_workers_per_subscription: now }] = await query(pair.target.url, 'SHOW max_sync_workers_per_subscription');
        return now === syncWorkers;
      });
      if (syncWorkers !== '2') {
        expect(await targetAgent.waitForEvent('init.server_setting_changed')).toMatchObject({ from: Number(syncWorkers), to: 2 });
      }

      // node progress reads the target's own database, found through the
      // registry of whichever database --db names.
      const shown = await runCli(['node', 'progress', pair.target.id, '--json', '--db', pair.source.url]);
      expect(shown.code).toBe(0);
      expect(JSON.parse(shown.stdout)).toMatchObject({ node_id: pair.target.id, state: 'synchronized', progress: { overall_percent: 100 } });
      const human = await runCli(['node', 'progress', pair.target.id, '--db', pair.target.url]);
      expect(human.code).toBe(0);
      expect(human.stdout).toContain(`node ${pair.target.id}: synchronized from ${pair.source.id}`);
      expect(human.stdout).toMatch(/"Sales ünit"\."Order ""Items"" é"\s+done\s+100\.0%/);

      // Only user tables were published: each node keeps its own state.
      const published = await query(pair.source.url, 'SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2', [
        pair.replicationName,
      ]);
      expect(published.map((r) => `${r.schemaname}.${r.tablename}`)).toEqual(['Sales ünit.Order "Items" é', 'public.accounts', 'public.docs', 'public.events', 'public.slow']);
    });

    // origin = none, which keeps a pair that streams both ways from looping, needs 16 on both nodes
    if (options.major >= 16) {
      it('then initializes the source from the target without copying again: bidirectional, no loops', async () => {
        // A change that came back would fail to apply (duplicate key) and count
        // here; a table-sync worker the server restarted during the copy above
        // (seen on a loaded machine) is not this test's business.
        const workerErrors = async (url: string) =>
          (await query(url, 'SELECT coalesce(sum(apply_error_count + sync_error_count), 0)::int AS n FROM pg_stat_subscription_stats'))[0].n;
        const errorsBefore = [await workerErrors(pair.source.url), await workerErrors(pair.target.url)];
        const sourceAgent = new AgentProcess(pair.source.url);
        await sourceAgent.waitForEvent('agent.started');
        const reverse = await runCli(['node', 'start', pair.source.id, '--from', pair.target.id, '--db', pair.source.url]);
        expect(reverse.stderr).not.toMatch(/error/);
        expect(reverse.code).toBe(0);
        const status = await initStatus(pair.source);
        expect(status.state).toBe('synchronized');
        expect(status.method_state).toMatchObject({ copy_data: false, reverse_of_pair: true });
        await sourceAgent.waitForEvent('init.reverse_of_pair');

        await query(pair.source.url, "INSERT INTO public.accounts VALUES (-1, 1, 'written on the source')");
        await query(pair.target.url, "INSERT INTO public.accounts VALUES (-2, 2, 'written on the target')");
        const both = "SELECT id, note FROM public.accounts WHERE id < 0 ORDER BY id";
        const expected = [
          { id: -2, note: 'written on the target' },
          { id: -1, note: 'written on the source' },
        ];
        await waitUntil('both rows on both nodes', async () => {
          const [a, b] = [await query(pair.source.url, both), await query(pair.target.url, both)];
          return a.length === 2 && b.length === 2;
        });
        // An update made on one side arrives once and does not come back.
        await query(pair.target.url, "UPDATE public.accounts SET balance = balance + 10 WHERE id = -1");
        const reverseName = (await query(pair.source.url, 'SELECT steep_repl.replication_name($1, $2) AS n', [pair.target.id, pair.source.id]))[0].n;
        await waitCaughtUp(pair);
        await waitCaughtUp({ ...pair, source: pair.target }, reverseName);
        await waitCaughtUp(pair);
        for (const url of [pair.source.url, pair.target.url]) {
          expect(await query(url, both)).toEqual(expected);
          expect(await query(url, 'SELECT balance::int AS b FROM public.accounts WHERE id = -1')).toEqual([{ b: 11 }]);
        }
        expect([await workerErrors(pair.source.url), await workerErrors(pair.target.url)]).toEqual(errorsBefore);
        expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
        await sourceAgent.stop();
      });
    } else {
      it('then refuses to initialize the source from the target before anything is created: a bidirectional pair needs 16', async () => {
        const sourceAgent = new AgentProcess(pair.source.url);
        await sourceAgent.waitForEvent('agent.started');
        const reversePair = { ...pair, source: pair.target, target: pair.source };
        const before = await leftovers(pair);
        const reverse = await runCli(['node', 'start', pair.source.id, '--from', pair.target.id, '--db', pair.source.url]);
        expect(reverse.code).toBe(1);
        const refusal = `a bidirectional pair ${pair.target.id} <-> ${pair.source.id} needs PostgreSQL 16 or later on both nodes (origin = none), and ${pair.target.id} runs PostgreSQL ${options.major}: every change would loop between them`;
        expect(reverse.stderr).toContain(refusal);
        expect(reverse.stderr).toContain('upgrade both servers to 16 or later, or keep the pair one-way');
        const refused = await initStatus(pair.source);
        expect(refused.state).toBe('failed');
        expect(refused.progress.error).toContain(refusal);
        // nothing for source <- target on either side; the first direction as it was
        expect(await leftovers(reversePair)).toEqual({ subscriptions: [], slots: [], publications: [] });
        expect(await leftovers(pair)).toEqual(before);
        expect(before).toEqual({ subscriptions: [pair.replicationName], slots: [pair.replicationName], publications: [pair.replicationName] });
        const cancel = await runCli(['node', 'cancel', pair.source.id, '--db', pair.source.url]);
        expect(cancel.code).toBe(0);
        expect((await initStatus(pair.source)).state).toBe('uninitialized');

        // the first direction still streams
        await query(pair.source.url, "INSERT INTO public.accounts VALUES (-1, 1, 'after the refusal')");
        await waitCaughtUp(pair);
        expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
        await sourceAgent.stop();
      });
    }
  });
}
