// The manual init's SQL alone, from psql's point of view, on the shared
// PostgreSQL 18 clusters (no agent, no CLI): on the source
// prepare_manual_slot, record_manual_slot, cancel_manual_prepare and the
// expiry; on the target start_init for method manual (no job), complete_init
// (the request and its job, resume of a failed one) and recovery_end(). Every
// bad input is refused with a clear error and changes nothing; node ids and
// table names with spaces, quotes, capitals and unicode are quoted wherever
// they appear. A pg_basebackup copy's reset needs a promoted copy: here only
// its refusals on a database that is none (the source itself); the reset
// runs end to end in test/manual-basebackup.test.ts.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { DatabaseError } from 'pg';
import { freePort } from '../lib/embedded-cluster';
import { createSlotWithSnapshotOn, ExportedSlot } from '../lib/slot-with-snapshot';
import { cancelManualPrepare } from '../lib/sql/cancelManualPrepare';
import { completeInit } from '../lib/sql/completeInit';
import { prepareManualSlot } from '../lib/sql/prepareManualSlot';
import { recordManualSlot } from '../lib/sql/recordManualSlot';
import { recoveryEnd } from '../lib/sql/recoveryEnd';
import { backupBinDir, backupDir, baseBackup, removeRestored, restoreBaseBackup } from './support/backups';
import { clusterA, clusterB, OwnClusters, query, refusal, startOwnClusters, withClient } from './support/clusters';
import { createInitPair, InitPair } from './support/init-pair';
import { createNodeDb, NodeDb, registerIn } from './support/node-pair';
import { waitUntil } from './support/wait';

jest.setTimeout(60000);

// Everything these functions may change in one database (timestamps that
// move by themselves left out).
async function stateOf(url: string): Promise<unknown> {
  const [row] = await query(
    url,
    `SELECT (SELECT coalesce(jsonb_agg(to_jsonb(n) - 'last_seen' - 'status' ORDER BY node_id), '[]') FROM steep_repl.nodes n) AS nodes,
            (SELECT coalesce(jsonb_agg(to_jsonb(i) ORDER BY slot_name), '[]') FROM steep_repl.init_slots i) AS init_slots,
            (SELECT coalesce(jsonb_agg(to_jsonb(p) - 'updated_at' ORDER BY node_id), '[]') FROM steep_repl.init_progress p) AS progress,
            (SELECT coalesce(jsonb_agg(to_jsonb(m) - 'updated_at' ORDER BY node_id), '[]') FROM steep_repl.init_method_state m) AS method_state,
            (SELECT coalesce(jsonb_agg(key ORDER BY key), '[]') FROM graphile_worker._private_jobs) AS jobs,
            (SELECT count(*)::int FROM graphile_worker._private_jobs) AS job_count,
            (SELECT coalesce(jsonb_agg(pubname ORDER BY pubname), '[]') FROM pg_publication) AS publications,
            (SELECT coalesce(jsonb_agg(slot_name ORDER BY slot_name), '[]') FROM pg_replication_slots WHERE database = current_database()) AS slots,
            (SELECT coalesce(jsonb_agg(subname ORDER BY subname), '[]') FROM pg_subscription
              WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())) AS subscriptions,
            (SELECT count(*)::int FROM steep_repl.audit_log) AS audit_rows`,
  );
  return row;
}

const lastEvent = async (url: string, event: string): Promise<any> =>
  (await query(url, 'SELECT node_id, details FROM steep_repl.audit_log WHERE event = $1 ORDER BY audit_id DESC LIMIT 1', [event]))[0];

describe('manual init SQL', () => {
  let pair: InitPair;
  let name: string;
  let src: string;
  let tgt: string;
  // node prepare --for pg_dump's snapshot holder, as the CLI makes it
  let holder: ExportedSlot | undefined;

  const hold = async (): Promise<ExportedSlot> => {
    holder = await createSlotWithSnapshotOn(
      { connectionString: pair.source.url, application_name: 'steep-repl prepare' },
      `source ${pair.source.name}`,
      name,
    );
    return holder;
  };

  beforeAll(async () => {
    pair = await createInitPair({
      tag: 'manual_sql',
      sourceCluster: clusterA(),
      targetCluster: clusterB(),
      sourceId: 'Manual "Src" Ä',
      targetId: 'manual Tgt ü',
      rows: 200,
    });
    name = pair.replicationName;
    src = pair.source.url;
    tgt = pair.target.url;
  });
  afterEach(async () => {
    await holder?.release();
    holder = undefined;
  });
  afterAll(async () => {
    await pair?.drop();
  });

  describe('on the source', () => {
    it('prepare_manual_slot refuses bad input with a clear error and changes nothing', async () => {
      const before = await stateOf(src);
      const prepare = 'SELECT steep_repl.prepare_manual_slot($1, $2, $3)';
      const cases: Array<[unknown[], Partial<DatabaseError>]> = [
        [['nobody', 'pg_dump', {}], { code: 'SR001', message: "unknown node 'nobody'" }],
        [[pair.source.id, 'pg_dump', {}], { code: 'SR004', message: 'node "Manual ""Src"" Ä" is this database: prepare runs on the source of the manual init, for its target' }],
        [[pair.target.id, 'pg_dmp', {}], { code: 'SR004', message: "backup must be pg_dump or pg_basebackup, got 'pg_dmp'" }],
        [[pair.target.id, null, {}], { code: 'SR004', message: 'backup must be pg_dump or pg_basebackup, got NULL' }],
        [[pair.target.id, 'pg_dump', { schema_sync: 'auto' }], { code: 'SR004', message: 'prepare_manual_slot takes option expires only, got {"schema_sync": "auto"}' }],
        // (as text: pg sends a JS array as a PostgreSQL array)
        [[pair.target.id, 'pg_dump', '[]'], { code: 'SR004', message: 'prepare_manual_slot takes option expires only, got []' }],
        [[pair.target.id, 'pg_dump', { expires: 10 }], { code: 'SR004', message: 'option expires must be from 60 to 31536000 seconds, got 10: out of range' }],
        [[pair.target.id, 'pg_dump', { expires: 'soon' }], { code: 'SR004', message: `option expires must be a number of seconds or an interval such as '2 hours', got "soon"` }],
      ];
      for (const [params, expected] of cases) {
        expect({ params, error: await refusal(src, prepare, params) }).toMatchObject({ params, error: expected });
      }
      expect(await stateOf(src)).toEqual(before);
    });

    it('prepare_manual_slot refuses a table without identity, naming it quoted, and a publication of the pair that no prepare made', async () => {
      await query(src, 'CREATE TABLE "Sales ünit"."No ""Key"" Ä" (v text)');
      try {
        const before = await stateOf(src);
        const err = await refusal(src, 'SELECT steep_repl.prepare_manual_slot($1, $2)', [pair.target.id, 'pg_basebackup']);
        expect(err).toMatchObject({
          code: 'SR004',
          message: 'tables without a primary key or replica identity cannot replicate their updates and deletes: "Sales ünit"."No ""Key"" Ä"',
        });
        expect(err.hint).toMatch(/REPLICA IDENTITY FULL/);
        expect(await stateOf(src)).toEqual(before);
      } finally {
        await query(src, 'DROP TABLE "Sales ünit"."No ""Key"" Ä"');
      }
      await query(src, `CREATE PUBLICATION ${name} FOR TABLE public.accounts`);
      try {
        const before = await stateOf(src);
        const err = await refusal(src, 'SELECT steep_repl.prepare_manual_slot($1, $2)', [pair.target.id, 'pg_dump']);
        expect(err).toMatchObject({ code: 'SR006', message: `publication ${name} exists already and no prepare made it` });
        expect(err.hint).toContain(`DROP PUBLICATION ${name}`);
        expect(await stateOf(src)).toEqual(before);
      } finally {
        await query(src, `DROP PUBLICATION ${name}`);
      }
    });

    it('pg_dump: prepare, the slot with its exported snapshot, record; the snapshot sees exactly the rows before the slot; cancel ends the holder and removes everything', async () => {
      const before = await stateOf(src);
      const row = await withClient(src, (c) => prepareManualSlot(c, pair.target.id, 'pg_dump', { expires: '2 days' }));
      expect(row).toMatchObject({ slot_name: name, for_node: pair.target.id, purpose: 'manual', publication: name, lsn: null, backup: 'pg_dump', snapshot_name: null, timeline: null });
      expect(row.expires_at.getTime() - row.created_at.getTime()).toBe(2 * 86400 * 1000);
      // the publication covers every replicated table, quoted, partitions through their root
      const published = await query(src, 'SELECT format(\'%I.%I\', schemaname, tablename) AS t FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1', [name]);
      expect(published.map((r) => r.t)).toEqual(['"Sales ünit"."Order ""Items"" é"', 'public.accounts', 'public.docs', 'public.events', 'public.slow']);
      expect((await query(src, 'SELECT pubviaroot FROM pg_publication WHERE pubname = $1', [name]))[0].pubviaroot).toBe(true);
      expect((await query(src, 'SELECT key FROM graphile_worker.jobs WHERE task_identifier = $1', ['expire_prepared_slot'])).map((r) => r.key)).toEqual([`prepared_slot:${name}`]);

      const slot = await hold();
      const accountsAtSlot = Number((await query(src, 'SELECT count(*) FROM public.accounts'))[0].count);
      await query(src, "INSERT INTO public.accounts VALUES (900001, 1, 'after the slot')");

      // record_manual_slot's refusals change nothing (the row keeps lsn NULL)
      const prepared = await stateOf(src);
      const record = 'SELECT steep_repl.record_manual_slot($1, $2, $3)';
      const cases: Array<[unknown[], Partial<DatabaseError>]> = [
        [[name, slot.consistentLsn, null], { code: 'SR004', message: `a pg_dump prepare needs the snapshot exported with slot ${name}` }],
        [[name, null, slot.snapshotName], { code: 'SR004', message: "the slot's consistent LSN is needed (what creating the slot returned)" }],
        [[name, slot.consistentLsn, "x'; DROP TABLE x; --"], { code: 'SR004', message: `snapshot name 'x''; DROP TABLE x; --' is not one PostgreSQL exports (such as 00000003-0000001B-1)` }],
        [['no_such_slot', slot.consistentLsn, slot.snapshotName], { code: 'SR004', message: 'there is no replication slot no_such_slot in this database' }],
        [[name, 'not an lsn', slot.snapshotName], { code: '22P02' }],
      ];
      for (const [params, expected] of cases) {
        expect({ params, error: await refusal(src, record, params) }).toMatchObject({ params, error: expected });
      }
      expect(await stateOf(src)).toEqual(prepared);

      const recorded = await withClient(src, (c) => recordManualSlot(c, name, slot.consistentLsn, slot.snapshotName));
      expect(recorded).toMatchObject({ lsn: slot.consistentLsn, snapshot_name: slot.snapshotName, timeline: 1, backup: 'pg_dump' });
      expect((await lastEvent(src, 'slot.prepared')).details).toMatchObject({ slot_name: name, for_node: pair.target.id, purpose: 'manual', lsn: slot.consistentLsn });

      // what pg_dump --snapshot reads: the rows as they were at the slot's point
      const seen = await withClient(src, async (c) => {
        await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        await c.query(`SET TRANSACTION SNAPSHOT '${slot.snapshotName}'`);
        const { rows } = await c.query('SELECT count(*)::int AS n FROM public.accounts');
        await c.query('COMMIT');
        return rows[0].n;
      });
      expect(seen).toBe(accountsAtSlot);

      // the slot is not active while its snapshot is held: the holder is found by the snapshot
      expect(await query(src, 'SELECT slot_name, backup, snapshot_name, active, slot_exists, holder_pid FROM steep_repl.prepared_slots()')).toEqual([
        { slot_name: name, backup: 'pg_dump', snapshot_name: slot.snapshotName, active: false, slot_exists: true, holder_pid: slot.holderPid },
      ]);

      // a second prepare for the target while this one lives
      const living = await stateOf(src);
      const again = await refusal(src, 'SELECT steep_repl.prepare_manual_slot($1, $2)', [pair.target.id, 'pg_basebackup']);
      expect(again.code).toBe('SR006');
      expect(again.message).toMatch(new RegExp(`^slot ${name} is prepared for node "manual Tgt ü" already \\(manual pg_dump, made `));
      expect(again.hint).toBe(`complete it (steep-repl node complete 'manual Tgt ü') or cancel it (steep-repl node cancel 'manual Tgt ü'; SQL: SELECT steep_repl.cancel_manual_prepare('manual Tgt ü'))`);
      expect(await stateOf(src)).toEqual(living);

      const cancelled = await withClient(src, (c) => cancelManualPrepare(c, pair.target.id));
      expect(cancelled).toEqual({
        slot_name: name, for_node: pair.target.id, backup: 'pg_dump', slot_dropped: true, holder_terminated: slot.holderPid,
        publication: name, publication_dropped: true,
      });
      expect(await slot.closed).toBeInstanceOf(Error);
      expect((await lastEvent(src, 'slot.cancelled')).details).toMatchObject({ slot_name: name, for_node: pair.target.id, backup: 'pg_dump', holder_terminated: slot.holderPid });
      await query(src, 'DELETE FROM public.accounts WHERE id = 900001');
      const after: any = await stateOf(src);
      expect({ ...after, audit_rows: 0 }).toEqual({ ...(before as any), audit_rows: 0 });

      // nothing left to cancel
      const none = await refusal(src, 'SELECT steep_repl.cancel_manual_prepare($1)', [pair.target.id]);
      expect(none).toMatchObject({ code: 'SR003', message: 'this database holds no manual prepare for node "manual Tgt ü"' });
      expect(await stateOf(src)).toEqual(after);
    });

    it('pg_basebackup: the slot made by SQL is recorded without a snapshot; its expiry drops slot and publication', async () => {
      await withClient(src, (c) => prepareManualSlot(c, pair.target.id, 'pg_basebackup'));
      const [{ lsn }] = await query(src, "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", [name]);
      const made = await stateOf(src);
      const err = await refusal(src, 'SELECT steep_repl.record_manual_slot($1, $2, $3)', [name, lsn, '00000003-0000001B-1']);
      expect(err).toMatchObject({ code: 'SR004', message: "a pg_basebackup prepare reads no snapshot (got '00000003-0000001B-1')" });
      expect(await stateOf(src)).toEqual(made);
      const row = await withClient(src, (c) => recordManualSlot(c, name, lsn));
      expect(row).toMatchObject({ lsn, backup: 'pg_basebackup', snapshot_name: null, timeline: 1 });
      expect((await query(src, 'SELECT holder_pid, active FROM steep_repl.prepared_slots()'))[0]).toEqual({ holder_pid: null, active: false });

      await query(src, "UPDATE steep_repl.init_slots SET expires_at = now() - interval '1 second' WHERE slot_name = $1", [name]);
      expect((await query(src, 'SELECT steep_repl.expire_prepared_slot($1) AS r', [name]))[0].r).toBe('expired');
      expect((await lastEvent(src, 'slot.expired')).details).toMatchObject({ slot_name: name, purpose: 'manual', outcome: 'expired', publication_dropped: true });
      expect(await stateOf(src)).toMatchObject({ init_slots: [], publications: [], slots: [] });
    });

    it('the expiry of a pg_dump prepare ends its snapshot holder too', async () => {
      await withClient(src, (c) => prepareManualSlot(c, pair.target.id, 'pg_dump'));
      const slot = await hold();
      await withClient(src, (c) => recordManualSlot(c, name, slot.consistentLsn, slot.snapshotName));
      await query(src, "UPDATE steep_repl.init_slots SET expires_at = now() - interval '1 second' WHERE slot_name = $1", [name]);
      expect((await query(src, 'SELECT steep_repl.expire_prepared_slot($1) AS r', [name]))[0].r).toBe('expired');
      expect(await slot.closed).toBeInstanceOf(Error);
      expect(await stateOf(src)).toMatchObject({ init_slots: [], publications: [], slots: [] });
    });

    it('cancel_manual_prepare refuses a slot a subscription streams from, changing nothing', async () => {
      await withClient(src, (c) => prepareManualSlot(c, pair.target.id, 'pg_basebackup'));
      const [{ lsn }] = await query(src, "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", [name]);
      await withClient(src, (c) => recordManualSlot(c, name, lsn));
      const { host, port, user } = pair.source.cluster;
      // ASCII: the server escapes other bytes of an application_name (the walsender's is the subscription's name)
      const sub = 'Manual "Sub" X';
      const subId = `"${sub.replace(/"/g, '""')}"`;
      await query(
        tgt,
        `CREATE SUBSCRIPTION ${subId} CONNECTION 'host=${host} port=${port} user=${user} dbname=${pair.source.name}' PUBLICATION ${name}
         WITH (create_slot = false, slot_name = '${name}', copy_data = false)`,
      );
      try {
        await waitUntil('the subscription to stream from the slot', async () => (await query(src, 'SELECT active FROM pg_replication_slots WHERE slot_name = $1', [name]))[0]?.active);
        const [{ pid }] = await query(src, 'SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1', [name]);
        const before = await stateOf(src);
        const err = await refusal(src, 'SELECT steep_repl.cancel_manual_prepare($1)', [pair.target.id]);
        expect(err).toMatchObject({ code: 'SR006', message: `slot ${name} is in use by 'Manual "Sub" X' (pid ${pid})` });
        expect(err.hint).toBe("node complete subscribed through it: cancel the init on the target (steep-repl node cancel 'manual Tgt ü')");
        expect(await stateOf(src)).toEqual(before);
      } finally {
        await query(tgt, `ALTER SUBSCRIPTION ${subId} DISABLE`);
        await query(tgt, `ALTER SUBSCRIPTION ${subId} SET (slot_name = NONE)`);
        await query(tgt, `DROP SUBSCRIPTION ${subId}`);
      }
      await waitUntil('the slot to be free', async () => !(await query(src, 'SELECT active FROM pg_replication_slots WHERE slot_name = $1', [name]))[0]?.active);
      await withClient(src, (c) => cancelManualPrepare(c, pair.target.id));
      expect(await stateOf(src)).toMatchObject({ init_slots: [], publications: [], slots: [] });
    });
  });

  describe('on the target', () => {
    afterEach(async () => {
      // back to uninitialized for the next test, with no job queued (no agent runs here)
      await query(tgt, 'DELETE FROM graphile_worker._private_jobs');
      const [{ state }] = await query(tgt, 'SELECT init_state AS state FROM steep_repl.nodes WHERE node_id = $1', [pair.target.id]);
      if (state !== 'uninitialized') await query(tgt, "SELECT steep_repl.finish_init($1, 'cancelled')", [pair.target.id]);
    });

    it('recovery_end() on a server never promoted: timeline 1, in no recovery, the rest null', async () => {
      const end = await withClient(tgt, recoveryEnd);
      expect(end).toEqual({
        in_recovery: false, timeline: 1, parent_timeline: null, switchpoint: null, stop: null, stop_lsn: null, reason: null,
        system_identifier: expect.stringMatching(/^\d+$/),
      });
    });

    it('start_init for method manual needs backup, then records the init in preparing with no job', async () => {
      const before = await stateOf(tgt);
      const missing = await refusal(tgt, 'SELECT steep_repl.start_init($1, $2, $3, $4)', [pair.target.id, pair.source.id, 'manual', {}]);
      expect(missing.code).toBe('SR004');
      expect(missing.message).toMatch(/^method manual needs option backup: /);
      const wrong = await refusal(tgt, 'SELECT steep_repl.start_init($1, $2, $3, $4)', [pair.target.id, pair.source.id, 'manual', { backup: 'tar' }]);
      expect(wrong).toMatchObject({ code: 'SR004', message: 'option backup must be pg_dump, pg_basebackup, got "tar"' });
      expect(await stateOf(tgt)).toEqual(before);

      const [{ r }] = await query(tgt, 'SELECT steep_repl.start_init($1, $2, $3, $4) AS r', [pair.target.id, pair.source.id, 'manual', { backup: 'pg_dump', expires: '1 day' }]);
      expect(r).toMatchObject({ node_id: pair.target.id, method: 'manual', state: 'preparing', job_id: null, options: { backup: 'pg_dump', expires: 86400, source_lsn: null } });
      const [state] = await query(tgt, "SELECT backup, extract(epoch FROM expires_at - now()) AS left FROM steep_repl.init_method_state WHERE node_id = $1", [pair.target.id]);
      expect(state.backup).toBe('pg_dump');
      expect(Number(state.left)).toBeGreaterThan(86000);
      expect((await stateOf(tgt) as any).job_count).toBe(0);
    });

    it('complete_init refuses bad input, the wrong node and a node with no manual init waiting, changing nothing', async () => {
      const complete = 'SELECT steep_repl.complete_init($1, $2)';
      const uninitialized = await stateOf(tgt);
      const idle = await refusal(tgt, complete, [pair.target.id, {}]);
      expect(idle).toMatchObject({ code: 'SR004', message: 'node "manual Tgt ü" has no manual initialization waiting for complete: it is uninitialized' });
      expect(idle.hint).toBe("prepare one on the source first: steep-repl node prepare 'manual Tgt ü' --from <source> --for pg_dump (or pg_basebackup)");
      expect(await stateOf(tgt)).toEqual(uninitialized);

      await query(tgt, 'SELECT steep_repl.start_init($1, $2, $3, $4)', [pair.target.id, pair.source.id, 'manual', { backup: 'pg_dump' }]);
      const before = await stateOf(tgt);
      const cases: Array<[unknown[], Partial<DatabaseError>]> = [
        [[pair.target.id, { source_lsn: 'zz' }], { code: 'SR004', message: 'option source_lsn must be an LSN such as 16/B374D848, got "zz"' }],
        [[pair.target.id, { source_lsn: '0/1/2' }], { code: 'SR004', message: 'option source_lsn must be an LSN such as 16/B374D848, got "0/1/2"' }],
        [[pair.target.id, { source_lsn: 42 }], { code: 'SR004', message: 'option source_lsn must be an LSN such as 16/B374D848, got 42' }],
        [[pair.target.id, { backup: 'pg_basebackup' }], { code: 'SR004', message: "option 'backup' is given to node prepare, not to node complete" }],
        [[pair.target.id, { expires: 60 }], { code: 'SR004', message: "option 'expires' is given to node prepare, not to node complete" }],
        [[pair.target.id, { parallel: 4 }], { code: 'SR004', message: "init option 'parallel' does not apply to method manual" }],
        [[pair.target.id, { bogus: 1 }], { code: 'SR004', message: "unknown init option 'bogus'" }],
        [[pair.target.id, '[]'], { code: 'SR004', message: 'complete options must be a JSON object, got array' }],
        [['nobody', {}], { code: 'SR001', message: "unknown node 'nobody'" }],
        [
          [pair.source.id, {}],
          {
            code: 'SR004',
            message: 'complete_init runs on the database of node "Manual ""Src"" Ä"; this database is node "manual Tgt ü" and no pg_basebackup prepare for "Manual ""Src"" Ä" came along with it',
          },
        ],
      ];
      for (const [params, expected] of cases) {
        expect({ params, error: await refusal(tgt, complete, params) }).toMatchObject({ params, error: expected });
      }
      expect(await stateOf(tgt)).toEqual(before);
    });

    it('complete_init records the request and queues the job; a second is refused; a failed manual init is resumed', async () => {
      await query(tgt, 'SELECT steep_repl.start_init($1, $2, $3, $4)', [pair.target.id, pair.source.id, 'manual', { backup: 'pg_dump' }]);
      const requested = await withClient(tgt, (c) => completeInit(c, pair.target.id, { source_lsn: '0/1A2B3C4', timeout: '1 hour' }));
      expect(requested).toMatchObject({
        node_id: pair.target.id, source_node_id: pair.source.id, job_id: expect.any(Number), backup: 'pg_dump', source_lsn: '0/1A2B3C4',
        resumed: false, recovery_end: null, removed: [], other_databases: [], restart_required: false,
      });
      const [job] = await query(tgt, 'SELECT j.id::int, t.identifier AS task_identifier, j.key, j.payload FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id');
      expect(job).toMatchObject({ id: requested.job_id, task_identifier: 'init_manual', key: `init:${pair.target.id}`, payload: { node_id: pair.target.id, source_node_id: pair.source.id } });
      const [facts] = await query(tgt, 'SELECT source_lsn::text, complete_requested_at IS NOT NULL AS requested FROM steep_repl.init_method_state WHERE node_id = $1', [pair.target.id]);
      expect(facts).toEqual({ source_lsn: '0/1A2B3C4', requested: true });
      const [progress] = await query(tgt, 'SELECT options, job_id::int FROM steep_repl.init_progress WHERE node_id = $1', [pair.target.id]);
      expect(progress).toMatchObject({ job_id: requested.job_id, options: { timeout: 3600, source_lsn: '0/1A2B3C4', backup: 'pg_dump' } });
      expect((await lastEvent(tgt, 'init.complete_requested')).details).toMatchObject({ job_id: requested.job_id, backup: 'pg_dump', source_lsn: '0/1A2B3C4', resume: false });

      const queued = await stateOf(tgt);
      const twice = await refusal(tgt, 'SELECT steep_repl.complete_init($1)', [pair.target.id]);
      expect(twice).toMatchObject({ code: 'SR006', message: 'an initialization of node "manual Tgt ü" is already queued or running' });
      expect(await stateOf(tgt)).toEqual(queued);

      // the job's run failed: complete again resumes it, with the handover
      // point it names now (a --source-lsn refused before is not kept)
      await query(tgt, 'SELECT graphile_worker.remove_job($1)', [`init:${pair.target.id}`]);
      await query(tgt, "SELECT steep_repl.finish_init($1, 'failed', '{\"error\": \"the slot was lost\"}')", [pair.target.id]);
      const resumed = await withClient(tgt, (c) => completeInit(c, pair.target.id));
      expect(resumed).toMatchObject({ resumed: true, source_lsn: null, job_id: expect.any(Number) });
      const [options] = await query(tgt, "SELECT options ? 'source_lsn' AS kept FROM steep_repl.init_progress WHERE node_id = $1", [pair.target.id]);
      expect(options).toEqual({ kept: false });
      const [node] = await query(tgt, 'SELECT n.init_state, p.phase, p.error FROM steep_repl.nodes n JOIN steep_repl.init_progress p USING (node_id) WHERE node_id = $1', [pair.target.id]);
      expect(node).toEqual({ init_state: 'preparing', phase: 'preparing', error: null });
    });

    it('complete_init never resets the source: on the database holding the pg_basebackup prepare it refuses, changing nothing', async () => {
      await withClient(src, (c) => prepareManualSlot(c, pair.target.id, 'pg_basebackup'));
      try {
        const [{ lsn }] = await query(src, "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", [name]);
        await withClient(src, (c) => recordManualSlot(c, name, lsn));
        const before = await stateOf(src);
        // never promoted (a source that was is refused for holding the slot: test/manual-sql's PostgreSQL 15 copy)
        for (const options of [{}, { source_lsn: lsn }]) {
          const err = await refusal(src, 'SELECT steep_repl.complete_init($1, $2)', [pair.target.id, options]);
          expect(err).toMatchObject({ code: 'SR004', message: "this copy did not end its recovery just before the slot's LSN: it is on timeline 1, never promoted at a recovery target" });
        }
        expect(await stateOf(src)).toEqual(before);
      } finally {
        await withClient(src, (c) => cancelManualPrepare(c, pair.target.id));
      }
    });
  });

  // complete_init on a real copy: PostgreSQL 15's pg_basebackup of an own
  // PostgreSQL 15 source (Debian's binaries), restored as a standby.
  describe('on a pg_basebackup copy (PostgreSQL 15)', () => {
    let own: OwnClusters<'source'>;
    let source: NodeDb;
    let backup: string;
    let copyPort: number;
    let slotLsn: string;
    let copyName: string;
    const copyId = 'Copy "Tgt" ü';
    const rowsBefore = 300;

    beforeAll(async () => {
      own = await startOwnClusters('test-manual-sql', ['source'] as const, { versions: { source: 15 } });
      const cluster = own.clusters.source;
      source = await createNodeDb(cluster, 'manual_sql_bb', 'Src "15" Ä');
      await registerIn(source, source);
      // the copy will be the same database on a server of its own
      copyPort = await freePort();
      await registerIn(source, { id: copyId, cluster: { ...cluster, port: copyPort }, name: source.name, url: 'elsewhere' });
      await query(source.url, `CREATE TABLE "Sales ünit" ("Id" int PRIMARY KEY, v text);
        INSERT INTO "Sales ünit" SELECT g, 'before' FROM generate_series(1, ${rowsBefore}) g;
        CREATE PUBLICATION "Their Pub" FOR TABLE "Sales ünit";
        CREATE SUBSCRIPTION "Own ""Sub""" CONNECTION 'host=127.0.0.1 port=1 dbname=nowhere' PUBLICATION p WITH (connect = false)`);
      await query(cluster.url(), 'CREATE DATABASE "Other Db"');
      await query(cluster.url('Other Db'), "CREATE SUBSCRIPTION other_sub CONNECTION 'host=127.0.0.1 port=1 dbname=nowhere' PUBLICATION p WITH (connect = false)");
      // the backup first, the prepare after it
      backup = path.join(backupDir(own.runDir), 'base');
      await baseBackup(cluster, backup);
      const row = await withClient(source.url, (c) => prepareManualSlot(c, copyId, 'pg_basebackup'));
      copyName = row.slot_name;
      [{ lsn: slotLsn }] = await query(source.url, "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", [copyName]);
      await withClient(source.url, (c) => recordManualSlot(c, copyName, slotLsn));
      await query(source.url, "INSERT INTO \"Sales ünit\" SELECT g, 'after' FROM generate_series(1001, 1100) g");
    }, 120000);
    afterAll(async () => {
      await removeRestored();
      await own?.remove();
    });

    const standby = (extra = '') => `primary_conninfo = 'host=127.0.0.1 port=${own.clusters.source.port} user=postgres'\n${extra}`;

    it('prepare for pg_basebackup refuses while a base backup of the source runs (it must end before the slot)', async () => {
      await registerIn(source, { id: 'Later "T"', cluster: own.clusters.source, name: 'later', url: 'elsewhere' });
      const dir = path.join(backupDir(own.runDir), 'slow');
      // a client, so root may run it: throttled so that it is still running when prepare asks
      const slow = spawn(path.join(backupBinDir, 'pg_basebackup'), ['-h', '127.0.0.1', '-p', String(own.clusters.source.port), '-U', 'postgres', '-D', dir, '--max-rate=32k', '-X', 'none'], { stdio: 'ignore' });
      const ended = new Promise((resolve) => slow.once('exit', resolve));
      try {
        await waitUntil('the base backup to run', async () => (await query(source.url, 'SELECT count(*)::int AS n FROM pg_stat_progress_basebackup'))[0].n > 0);
        const before = await stateOf(source.url);
        const err = await refusal(source.url, 'SELECT steep_repl.prepare_manual_slot($1, $2)', ['Later "T"', 'pg_basebackup']);
        expect(err).toMatchObject({
          code: 'SR004',
          message: 'a base backup of this server is running',
          hint: "take the base backup first and prepare after it finished: recovery can only stop at the slot's LSN if the backup ended before it",
        });
        expect(await stateOf(source.url)).toEqual(before);
      } finally {
        slow.kill('SIGTERM');
        await ended;
      }
    });

    it('a copy that replayed past the slot (no recovery target) is refused, changing nothing', async () => {
      const copy = await restoreBaseBackup(backup, path.join(own.runDir, 'copy-past'), { signal: 'standby', conf: standby(), settings: { max_logical_replication_workers: 0 }, port: copyPort });
      try {
        const url = copy.url(source.name);
        await waitUntil('the standby to replay the rows after the slot', async () => (await query(url, 'SELECT count(*)::int AS n FROM "Sales ünit"'))[0].n === rowsBefore + 100);
        const inRecovery = await refusal(url, 'SELECT steep_repl.complete_init($1)', [copyId]);
        expect(inRecovery).toMatchObject({ code: 'SR004', message: 'this copy is still in recovery' });
        await query(url, 'SELECT pg_promote()');
        await copy.waitPromoted();
        expect(await withClient(url, recoveryEnd)).toMatchObject({ in_recovery: false, timeline: 2, parent_timeline: 1, stop: null, stop_lsn: null, reason: 'no recovery target specified' });
        const before = await stateOf(url);
        const err = await refusal(url, 'SELECT steep_repl.complete_init($1)', [copyId]);
        expect(err).toMatchObject({ code: 'SR004', message: "this copy did not end its recovery just before the slot's LSN: timeline 2, no recovery target specified" });
        expect(await stateOf(url)).toEqual(before);
      } finally {
        await copy.remove();
      }
    });

    it('a copy stopped just before the slot is reset and its init recorded; no job while max_logical_replication_workers is 0', async () => {
      const copy = await restoreBaseBackup(backup, path.join(own.runDir, 'copy-exact'), {
        signal: 'standby',
        conf: standby(`recovery_target_lsn = '${slotLsn}'\nrecovery_target_inclusive = off\nrecovery_target_action = promote\nrecovery_target_timeline = 'current'`),
        settings: { max_logical_replication_workers: 0 },
        port: copyPort,
      });
      try {
        await copy.waitPromoted();
        const url = copy.url(source.name);
        const end = await withClient(url, recoveryEnd);
        expect(end).toMatchObject({ in_recovery: false, timeline: 2, parent_timeline: 1, stop: 'before', stop_lsn: slotLsn, reason: `before LSN ${slotLsn}` });
        expect(end.system_identifier).toBe((await query(source.url, 'SELECT system_identifier::text AS s FROM pg_control_system()'))[0].s);
        expect((await query(url, 'SELECT count(*)::int AS n FROM "Sales ünit"'))[0].n).toBe(rowsBefore);

        // bad input, a source_lsn the recovery did not stop at, and a database that holds the slot (as the source does) change nothing
        const before = await stateOf(url);
        const cases: Array<[unknown[], Partial<DatabaseError>]> = [
          [[copyId, { source_lsn: 'x/y' }], { code: 'SR004', message: 'option source_lsn must be an LSN such as 16/B374D848, got "x/y"' }],
          [[copyId, { source_lsn: '0/10' }], { code: 'SR004', message: `this copy's recovery ended at ${end.switchpoint} (before LSN ${slotLsn}), not just before source_lsn 0/10` }],
          [[copyId, { backup: 'pg_dump' }], { code: 'SR004', message: "option 'backup' is given to node prepare, not to node complete" }],
        ];
        for (const [params, expected] of cases) {
          expect({ params, error: await refusal(url, 'SELECT steep_repl.complete_init($1, $2)', params) }).toMatchObject({ params, error: expected });
        }
        await query(url, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [copyName]);
        const holding = await stateOf(url);
        const sourceLike = await refusal(url, 'SELECT steep_repl.complete_init($1)', [copyId]);
        expect(sourceLike).toMatchObject({ code: 'SR004', message: `this database is the source of the prepare for node "Copy ""Tgt"" ü", not a restored copy of it: it holds slot ${copyName}` });
        expect(await stateOf(url)).toEqual(holding);
        await query(url, 'SELECT pg_drop_replication_slot($1)', [copyName]);
        expect(await stateOf(url)).toEqual(before);

        const reset = await withClient(url, (c) => completeInit(c, copyId));
        expect(reset).toMatchObject({
          node_id: copyId, source_node_id: source.id, job_id: null, backup: 'pg_basebackup', restart_required: true,
          hint: 'ALTER SYSTEM RESET max_logical_replication_workers (or set it above 0), restart the server, then run node complete again',
          removed: ['subscription "Own ""Sub"""', 'publication "Their Pub"', `publication ${copyName}`, '1 row(s) of steep_repl.init_slots', '1 job(s) of graphile_worker'],
          other_databases: [{ database: 'Other Db', subscription: 'other_sub', enabled: false, statements: ['ALTER SUBSCRIPTION other_sub DISABLE', 'ALTER SUBSCRIPTION other_sub SET (slot_name = NONE)', 'DROP SUBSCRIPTION other_sub'] }],
          recovery_end: end,
        });
        const after: any = await stateOf(url);
        expect(after).toMatchObject({ init_slots: [], publications: [], subscriptions: [], slots: [], job_count: 0 });
        expect(after.nodes.map((n: any) => [n.node_id, n.is_local, n.init_state, n.init_source_node])).toEqual([
          [copyId, true, 'preparing', source.id],
          [source.id, false, 'uninitialized', null],
        ]);
        expect(after.method_state).toMatchObject([{ node_id: copyId, slot_name: copyName, backup: 'pg_basebackup', recovery_end: end, complete_requested_at: null }]);
        expect((await lastEvent(url, 'node.copy_reset')).details).toMatchObject({ source_node: source.id, removed: reset.removed, other_databases: reset.other_databases });
        // nothing of the source changed
        expect((await query(source.cluster.url(), 'SELECT count(*)::int AS n FROM pg_subscription'))[0].n).toBe(2);
        expect((await query(source.url, 'SELECT count(*)::int AS n FROM steep_repl.init_slots'))[0].n).toBe(1);

        // the setting still 0: the next complete is refused, changing nothing
        const refused = await refusal(url, 'SELECT steep_repl.complete_init($1)', [copyId]);
        expect(refused).toMatchObject({ code: 'SR004', message: 'max_logical_replication_workers is 0 on this server: the subscription could not start' });
        expect(await stateOf(url)).toEqual(after);

        await query(url, 'ALTER SYSTEM RESET max_logical_replication_workers');
        await copy.stop();
        await copy.start();
        const queued = await withClient(url, (c) => completeInit(c, copyId));
        expect(queued).toMatchObject({ node_id: copyId, job_id: expect.any(Number), backup: 'pg_basebackup', restart_required: false, removed: [] });
        const [facts] = await query(url, 'SELECT complete_requested_at IS NOT NULL AS requested, recovery_end FROM steep_repl.init_method_state');
        expect(facts).toEqual({ requested: true, recovery_end: end });
      } finally {
        await copy.remove();
      }
    });
  });
});
