// Manual init from the DBA's own pg_dump, end to end on a PostgreSQL 15
// pair (Debian's postgresql-15: its pg_dump and pg_restore too). node
// prepare runs in the background holding the slot's exported snapshot; the
// pg_dump and pg_restore it printed run exactly as printed; writers keep
// writing on the source all along; node complete subscribes from the slot
// at the snapshot's point: synchronized, identical, nothing twice, nothing
// missing. Bad input to node complete is refused with nothing changed on
// either side; a cancel drops the slot; a slot dropped behind steep-repl's
// back is refused, and so is one the source invalidated
// (max_slot_wal_keep_size). The agent SIGKILLed in the middle of node
// complete: a new agent resumes it exactly (the origin set to the handover
// point once, before the subscription first streams).
import * as path from 'node:path';
import { backupDir, printedCommand, runPrintedOk } from './support/backups';
import { OwnClusters, query, startOwnClusters } from './support/clusters';
import { contentHashes, InitPair, initStatus, sourceDataSql, sourceWrites, userSchemaSql, waitCaughtUp } from './support/init-pair';
import { lsnCompare, manualState, preparedSlot, snapshotHolders, workerErrors } from './support/manual';
import { createNodeDb, NodeDb, registerPair } from './support/node-pair';
import { AgentProcess, CliRun, runCli, startCli, stopAllAgents } from './support/processes';
import { waitUntil } from './support/wait';
import { startWriter, Writer } from './support/writer';

jest.setTimeout(180000);

const rows = 3000;

const replicationName = async (db: NodeDb, source: string, target: string): Promise<string> =>
  (await query(db.url, 'SELECT steep_repl.replication_name($1, $2) AS n', [source, target]))[0].n;

// node prepare's output once it printed the next steps and holds the snapshot.
async function preparedOutput(run: CliRun): Promise<string> {
  return waitUntil(
    'node prepare to print the next steps',
    () => {
      if (run.child.exitCode !== null) throw new Error(`node prepare exited ${run.child.exitCode}:\n${run.stdout}\n${run.stderr}`);
      return /steep-repl node complete/.test(run.stdout) && /^\s*pg_restore /m.test(run.stdout) && run.stdout;
    },
    30000,
    100,
  );
}

describe('manual init from pg_dump (PostgreSQL 15)', () => {
  let own: OwnClusters<'source' | 'target'>;
  let source: NodeDb;
  let target: NodeDb;
  let spare: NodeDb;
  let pair: InitPair;
  let work: string;
  let writer: Writer | undefined;
  let prepare: CliRun | undefined;
  const agents: Record<string, AgentProcess> = {};

  beforeAll(async () => {
    own = await startOwnClusters('test-manual-dump', ['source', 'target'], { versions: { source: 15, target: 15 } });
    source = await createNodeDb(own.clusters.source, 'man_dump_src', 'Nöde "Quelle" dump', { installer: 'cli' });
    target = await createNodeDb(own.clusters.target, 'man_dump_tgt', "Nöde 'Ziel' dump", { installer: 'cli' });
    spare = await createNodeDb(own.clusters.target, 'man_dump_spare', 'Nöde Ersatz', { installer: 'cli' });
    await registerPair(source, target);
    await registerPair(source, spare);
    // the target has no user tables: pg_restore makes them
    await query(source.url, userSchemaSql);
    await query(source.url, sourceDataSql(rows));
    await query(source.url, `INSERT INTO public.slow SELECT g, 'slow ' || g FROM generate_series(1, 500) g`);
    await query(source.url, 'ANALYZE');
    pair = { source, target, replicationName: await replicationName(source, source.id, target.id), drop: async () => undefined };
    work = backupDir(own.runDir);
    agents.target = await AgentProcess.start(target.url);
  });
  afterAll(async () => {
    try {
      await writer?.stop().catch(() => undefined);
      prepare?.child.kill('SIGKILL');
      await stopAllAgents();
    } finally {
      await own?.remove();
    }
  });

  it('prepare holds the snapshot; the printed pg_dump and pg_restore run as printed under writes', async () => {
    writer = startWriter(source.url, sourceWrites(rows));
    await waitUntil('writes on the source', () => writer!.counts.transactions > 20 || writer!.error);
    // a directory name the shell must be given quoted
    const dumpDir = path.join(work, "dump 'eins'");
    prepare = startCli(['node', 'prepare', target.id, '--from', source.id, '--for', 'pg_dump', '--dump-dir', dumpDir, '--jobs', '2', '--db', target.url]);
    const printed = await preparedOutput(prepare);

    // the slot, made by prepare's replication connection, which holds its exported snapshot
    expect(await preparedSlot(source, pair.replicationName)).toMatchObject({ active: false });
    expect(await snapshotHolders(source)).toHaveLength(1);
    const [row] = await query(source.url, 'SELECT for_node, purpose, backup, lsn::text AS lsn, snapshot_name, timeline FROM steep_repl.init_slots WHERE slot_name = $1', [
      pair.replicationName,
    ]);
    expect(row).toMatchObject({ for_node: target.id, purpose: 'manual', backup: 'pg_dump', timeline: 1 });
    expect(row.snapshot_name).toMatch(/\S/);
    expect(row.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    const status = await initStatus(target);
    expect(status.state).toBe('preparing');
    expect(status.method_state).toMatchObject({ backup: 'pg_dump', slot_name: pair.replicationName, snapshot_name: row.snapshot_name });
    expect(status.job).toBeNull();

    // the exact next commands
    const dump = printedCommand(printed, 'pg_dump');
    expect(dump).toContain(`--snapshot=${row.snapshot_name}`);
    expect(dump).toContain('--jobs=2');
    expect(dump).not.toMatch(/password/i);
    const restore = printedCommand(printed, 'pg_restore');
    expect(restore).toContain('--exit-on-error');
    expect(printed).toContain(`steep-repl node complete`);

    // the DBA's part, while the source keeps being written
    const before = writer.counts.transactions;
    await runPrintedOk(dump, work);
    await runPrintedOk(restore, work);
    await waitUntil('writes on the source after the restore', () => writer!.counts.transactions > before + 100 || writer!.error, 60000);
    expect(writer.error).toBeUndefined();
    // the restore holds the rows as of the snapshot: fewer than the source has now
    const [{ n: restored }] = await query(target.url, 'SELECT count(*)::int AS n FROM public.accounts WHERE id >= 1000000');
    const [{ n: now }] = await query(source.url, 'SELECT count(*)::int AS n FROM public.accounts WHERE id >= 1000000');
    expect(restored).toBeGreaterThan(0);
    expect(restored).toBeLessThan(now);
    expect(prepare.child.exitCode).toBeNull();
  });

  it('node status while preparing shows the backup, the slot, its LSN, the snapshot held and the WAL retained', async () => {
    const [row] = await query(source.url, 'SELECT lsn::text AS lsn, snapshot_name FROM steep_repl.init_slots WHERE slot_name = $1', [pair.replicationName]);
    const shown = await runCli(['node', 'status', target.id, '--json', '--db', target.url]);
    expect(shown.code).toBe(0);
    const json = JSON.stringify(JSON.parse(shown.stdout));
    for (const fact of ['pg_dump', pair.replicationName, row.lsn, 'retained_bytes', '"snapshot_held":true']) expect(json).toContain(fact);
    const human = await runCli(['node', 'status', target.id, '--db', target.url]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/pg_dump/);
    expect(human.stdout).toMatch(/retains \S+ of WAL/);
    expect(human.stdout).toContain(`snapshot ${row.snapshot_name} held`);
  });

  it('node complete refuses a malformed LSN, an LSN behind the slot, an expired prepare and a schema mismatch, changing nothing', async () => {
    const before = await manualState(source, target, pair.replicationName);
    expect(before.source.holders).toBe(1);

    const malformed = await runCli(['node', 'complete', target.id, '--source-lsn', '16-B374D848', '--db', target.url]);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('an LSN such as 16/B374D848');
    expect(await manualState(source, target, pair.replicationName)).toEqual(before);

    // only the LSN is wrong: a bad argument
    const behind = await runCli(['node', 'complete', target.id, '--source-lsn', '0/1', '--db', target.url]);
    expect(behind.code).toBe(2);
    expect(behind.stderr).toMatch(/past the handover point 0\/1 \(--source-lsn\): the changes between 0\/1 and \S+ are gone/);
    expect(await manualState(source, target, pair.replicationName)).toEqual(before);

    // expired (its expiry job has not run yet: no agent on the source)
    const [{ expires }] = await query(source.url, 'SELECT expires_at::text AS expires FROM steep_repl.init_slots WHERE slot_name = $1', [pair.replicationName]);
    await query(source.url, "UPDATE steep_repl.init_slots SET expires_at = now() - interval '1 minute' WHERE slot_name = $1", [pair.replicationName]);
    try {
      const expired = await runCli(['node', 'complete', target.id, '--db', target.url]);
      expect(expired.code).toBe(1);
      expect(expired.stderr).toMatch(/expired at/);
      expect(expired.stderr).toMatch(/node prepare/);
    } finally {
      await query(source.url, 'UPDATE steep_repl.init_slots SET expires_at = $2::timestamptz WHERE slot_name = $1', [pair.replicationName, expires]);
    }
    expect(await manualState(source, target, pair.replicationName)).toEqual(before);

    // the restored schema differs from the source's
    await query(target.url, 'ALTER TABLE public.docs ADD COLUMN extra int');
    try {
      const mismatch = await runCli(['node', 'complete', target.id, '--db', target.url]);
      expect(mismatch.code).toBe(3);
      expect(mismatch.stderr).toMatch(/docs/);
      expect(mismatch.stderr).toMatch(/extra/);
    } finally {
      await query(target.url, 'ALTER TABLE public.docs DROP COLUMN extra');
    }
    expect(await manualState(source, target, pair.replicationName)).toEqual(before);
    expect(prepare!.child.exitCode).toBeNull();
  });

  it('node complete releases the snapshot and subscribes at its point: synchronized under writes, identical, nothing twice', async () => {
    const [{ lsn }] = await query(source.url, 'SELECT lsn::text AS lsn FROM steep_repl.init_slots WHERE slot_name = $1', [pair.replicationName]);
    const complete = await runCli(['node', 'complete', target.id, '--db', target.url]);
    expect(complete.stderr).not.toMatch(/error/i);
    expect(complete.code).toBe(0);
    expect(complete.stdout).toContain(`${target.id} is synchronized with ${source.id}`);

    // the prepare let go of the snapshot, told by node complete
    const held = await prepare!.result;
    expect(held.code).toBe(0);
    expect(held.stdout + held.stderr).toMatch(/released by node complete/);
    await agents.target.waitForEvent('init.snapshot_released');

    const status = await initStatus(target);
    expect(status.state).toBe('synchronized');
    expect(status.method_state).toMatchObject({ backup: 'pg_dump', source_lsn: lsn, copy_data: false });

    // writes after the handover arrive too
    const after = writer!.counts.transactions;
    await waitUntil('writes after complete', () => writer!.counts.transactions > after + 100 || writer!.error, 60000);
    const { transactions } = await writer!.stop();
    writer = undefined;
    expect(transactions).toBeGreaterThan(300);
    await waitCaughtUp(pair);
    expect(await contentHashes(target.url)).toEqual(await contentHashes(source.url));
    // a change applied twice would have failed on its key
    expect(await workerErrors(target.url)).toBe(0);
    // the dump's sequences, as of the snapshot
    expect(await query(target.url, 'SELECT last_value::int AS v FROM public.ticket_seq')).toEqual([{ v: 4242 }]);

    // the subscription streams from the prepared slot; the prepare row is used
    expect(await query(target.url, 'SELECT subname, subslotname FROM pg_subscription WHERE subname = $1', [pair.replicationName])).toEqual([
      { subname: pair.replicationName, subslotname: pair.replicationName },
    ]);
    expect(await preparedSlot(source, pair.replicationName)).toMatchObject({ active: true });
    expect(await query(source.url, 'SELECT slot_name FROM steep_repl.init_slots WHERE slot_name = $1', [pair.replicationName])).toEqual([]);
  });

  it('node cancel of a prepared pg_dump init drops the slot, its publication and the prepare, and ends the snapshot holder', async () => {
    agents.spare = await AgentProcess.start(spare.url);
    const name = await replicationName(source, source.id, spare.id);
    const run = startCli(['node', 'prepare', spare.id, '--from', source.id, '--for', 'pg_dump', '--dump-dir', path.join(work, 'dump zwei'), '--db', spare.url]);
    await preparedOutput(run);
    expect(await preparedSlot(source, name)).toMatchObject({ active: false });
    expect(await snapshotHolders(source)).toHaveLength(1);
    expect((await query(source.url, 'SELECT pubname FROM pg_publication')).map((r) => r.pubname)).toContain(name);

    const cancel = await runCli(['node', 'cancel', spare.id, '--db', spare.url]);
    expect(cancel.code).toBe(0);
    await waitUntil('the slot dropped', async () => !(await preparedSlot(source, name)));
    await waitUntil('the snapshot holder ended', async () => (await snapshotHolders(source)).length === 0);
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([run.result, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 20000)))]);
    clearTimeout(timer);
    expect(ended).toBeDefined();
    expect((await query(source.url, 'SELECT pubname FROM pg_publication')).map((r) => r.pubname)).not.toContain(name);
    expect(await query(source.url, 'SELECT slot_name FROM steep_repl.init_slots WHERE slot_name = $1', [name])).toEqual([]);
    await waitUntil('the spare uninitialized', async () => (await initStatus(spare)).state === 'uninitialized');
    // the first pair streams on
    expect(await preparedSlot(source, pair.replicationName)).toMatchObject({ active: true });
  });

  it('node complete refuses when the prepared slot was dropped behind its back, changing nothing; cancel then cleans up', async () => {
    const name = await replicationName(source, source.id, spare.id);
    const run = startCli(['node', 'prepare', spare.id, '--from', source.id, '--for', 'pg_dump', '--dump-dir', path.join(work, 'dump drei'), '--db', spare.url]);
    await preparedOutput(run);
    // the DBA ends the prepare (SIGTERM, as Ctrl+C): the slot stays for complete
    run.child.kill('SIGTERM');
    const ended = await run.result;
    expect(ended.code).toBe(0);
    expect(ended.stderr).toMatch(/released snapshot \S+ \(SIGTERM\)/);
    expect(await preparedSlot(source, name)).toMatchObject({ active: false });
    expect(await snapshotHolders(source)).toEqual([]);
    await query(source.url, 'SELECT pg_drop_replication_slot($1)', [name]);
    // the schema as the restore would have made it, so that only the slot is missing
    await query(spare.url, userSchemaSql);

    const before = await manualState(source, spare, name);
    const missing = await runCli(['node', 'complete', spare.id, '--db', spare.url]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`there is no replication slot ${name} on source node ${source.id}`);
    expect(missing.stderr).toMatch(/prepare again/);
    expect(await manualState(source, spare, name)).toEqual(before);
    expect((await initStatus(spare)).state).toBe('preparing');

    const cancel = await runCli(['node', 'cancel', spare.id, '--db', spare.url]);
    expect(cancel.code).toBe(0);
    await waitUntil('the spare uninitialized', async () => (await initStatus(spare)).state === 'uninitialized');
    expect((await query(source.url, 'SELECT pubname FROM pg_publication')).map((r) => r.pubname)).not.toContain(name);
    expect(await query(source.url, 'SELECT slot_name FROM steep_repl.init_slots WHERE slot_name = $1', [name])).toEqual([]);
  });
  it('node complete refuses a prepared slot the source invalidated (max_slot_wal_keep_size), changing nothing; cancel then cleans up', async () => {
    // a node of its own, so that no earlier test's leftovers matter
    const lost = await createNodeDb(own.clusters.target, 'man_dump_lost', 'Nöde verloren', { installer: 'cli' });
    await registerPair(source, lost);
    agents.lost = await AgentProcess.start(lost.url);
    const name = await replicationName(source, source.id, lost.id);
    const run = startCli(['node', 'prepare', lost.id, '--from', source.id, '--for', 'pg_dump', '--dump-dir', path.join(work, 'dump vier'), '--db', lost.url]);
    await preparedOutput(run);
    run.child.kill('SIGTERM');
    expect((await run.result).code).toBe(0);
    expect(await snapshotHolders(source)).toEqual([]);
    const [{ lsn }] = await query(source.url, 'SELECT lsn::text AS lsn FROM steep_repl.init_slots WHERE slot_name = $1', [name]);
    // the schema as the restore would have made it, so that only the slot is wrong
    await query(lost.url, userSchemaSql);

    // The source's other slots (the first pair's, when it streams) must
    // survive: the WAL moves on into new segments first, with no limit, and
    // their restart points follow it (a checkpoint logs the running
    // transactions they restart from); then a limit of under one segment,
    // and the next checkpoint invalidates the prepared slot, which nothing
    // moves on, alone.
    const others = async () =>
      query(source.url, "SELECT slot_name, active, restart_lsn::text AS restart_lsn, wal_status FROM pg_replication_slots WHERE slot_name <> $1 AND wal_status IS DISTINCT FROM 'lost' ORDER BY 1", [name]);
    const kept = (await others()).map((s) => s.slot_name);
    for (let i = 0; i < 3; i++) {
      await query(source.url, "SELECT pg_logical_emit_message(false, 'steep-repl test', 'a little WAL')");
      await query(source.url, 'SELECT pg_switch_wal()');
    }
    const [{ mark }] = await query(source.url, 'SELECT pg_current_wal_insert_lsn()::text AS mark');
    await query(source.url, 'CHECKPOINT');
    await waitUntil(
      "the source's active slots to restart past the new segments",
      async () => (await query(source.url, 'SELECT NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE active AND slot_name <> $1 AND restart_lsn < $2::pg_lsn) AS ok', [name, mark]))[0].ok,
      60000,
      500,
    );
    try {
      await query(source.url, "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
      await query(source.url, 'SELECT pg_reload_conf()');
      // PostgreSQL 15 invalidates at checkpoint time
      await waitUntil(
        'the prepared slot invalidated',
        async () => {
          await query(source.url, 'CHECKPOINT');
          return (await preparedSlot(source, name))?.wal_status === 'lost';
        },
        30000,
        500,
      );
    } finally {
      await query(source.url, 'ALTER SYSTEM RESET max_slot_wal_keep_size');
      await query(source.url, 'SELECT pg_reload_conf()');
    }
    expect((await others()).map((s) => s.slot_name)).toEqual(kept);

    const before = await manualState(source, lost, name);
    expect(before.source.slot).toMatchObject({ wal_status: 'lost' });
    expect(before.source.row).not.toBeNull();
    const refused = await runCli(['node', 'complete', lost.id, '--db', lost.url]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`node complete of ${lost.id} refused (nothing was changed)`);
    expect(refused.stderr).toContain(
      `the slot ${name} on source node ${source.id} was invalidated (wal_status lost): the server removed WAL it still needed (max_slot_wal_keep_size), so the changes since ${lsn} are gone`,
    );
    expect(refused.stderr).toMatch(/prepare again/);
    expect(refused.stderr).toMatch(/raise max_slot_wal_keep_size/);
    expect(await manualState(source, lost, name)).toEqual(before);
    expect((await initStatus(lost)).state).toBe('preparing');

    const cancel = await runCli(['node', 'cancel', lost.id, '--db', lost.url]);
    expect(cancel.code).toBe(0);
    await waitUntil('the lost node uninitialized', async () => (await initStatus(lost)).state === 'uninitialized');
    await waitUntil('the invalidated slot dropped', async () => !(await preparedSlot(source, name)));
    expect((await query(source.url, 'SELECT pubname FROM pg_publication')).map((r) => r.pubname)).not.toContain(name);
    expect(await query(source.url, 'SELECT slot_name FROM steep_repl.init_slots WHERE slot_name = $1', [name])).toEqual([]);
  });

  it('the agent SIGKILLed in the middle of node complete, under writes: a new agent resumes, synchronized, identical', async () => {
    // a node of its own, so that no earlier test's leftovers matter
    const node = await createNodeDb(own.clusters.target, 'man_dump_kill', 'Nöde getötet', { installer: 'cli' });
    await registerPair(source, node);
    const name = await replicationName(source, source.id, node.id);
    const killPair: InitPair = { source, target: node, replicationName: name, drop: async () => undefined };
    // new accounts ids above every earlier writer's
    const [{ offset }] = await query(source.url, 'SELECT greatest(coalesce(max(id), 0) - 999999, 0)::int AS offset FROM public.accounts');
    const writes = sourceWrites(rows);
    const w = startWriter(source.url, (n) => writes(n + offset));
    let run: CliRun | undefined;
    let first: AgentProcess | undefined;
    let second: AgentProcess | undefined;
    // the node's client sessions of steep-repl (agents, CLI runs)
    const sessions = async () =>
      (
        await query(
          node.url,
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND application_name LIKE 'steep-repl%'",
        )
      )[0].n;
    try {
      first = await AgentProcess.start(node.url);
      await waitUntil('writes on the source', () => w.counts.transactions > 20 || w.error);
      run = startCli(['node', 'prepare', node.id, '--from', source.id, '--for', 'pg_dump', '--dump-dir', path.join(work, 'dump fünf'), '--jobs', '2', '--db', node.url]);
      const printed = await preparedOutput(run);
      const [{ lsn: h }] = await query(source.url, 'SELECT lsn::text AS lsn FROM steep_repl.init_slots WHERE slot_name = $1', [name]);
      const before = w.counts.transactions;
      await runPrintedOk(printedCommand(printed, 'pg_dump'), work);
      await runPrintedOk(printedCommand(printed, 'pg_restore'), work);
      await waitUntil('writes on the source after the restore', () => w.counts.transactions > before + 100 || w.error, 60000);

      const queued = await runCli(['node', 'complete', node.id, '--no-wait', '--db', node.url]);
      expect(queued.stderr).not.toMatch(/error/i);
      expect(queued.code).toBe(0);
      // the agent's own node process (AgentProcess spawns no shell)
      const created = await first.waitFor((l) => l.event === 'init.subscription_created', 60000);
      await first.stop('SIGKILL');
      const held = await run.result;
      // its backends end once they notice; until then a statement it sent may still commit
      await waitUntil("the killed agent's sessions to end", async () => (await sessions()) === 0, 20000, 100);
      // where the kill landed
      const [sub] = await query(node.url, 'SELECT oid::int8::float8 AS oid, subenabled FROM pg_subscription WHERE subname = $1', [name]);
      const [{ at }] = await query(node.url, "SELECT pg_replication_origin_progress('pg_' || $1::text, false)::text AS at", [sub.oid]);
      const logged = first.lines
        .slice(first.lines.indexOf(created) + 1)
        .map((l) => l.event)
        .filter((e) => e.startsWith('init.'));
      const { state } = await initStatus(node);
      console.log(`SIGKILL after init.subscription_created: node ${state}, subscription ${sub.subenabled ? 'enabled' : 'disabled'}, origin at ${at ?? 'none'} (H ${h}); logged after it: ${logged.join(' ') || 'nothing'}`);
      expect(created).toMatchObject({ slot_name: name, copy_data: false, enabled: false, handover_lsn: h });
      expect(['preparing', 'catching_up']).toContain(state);
      // the snapshot holder was ended before the subscription was made
      expect(held.code).toBe(0);
      expect(held.stdout + held.stderr).toMatch(/released by node complete/);

      second = await AgentProcess.start(node.url);
      const reused = await second.waitForEvent('init.subscription_reused', 30000);
      expect(reused).toMatchObject({ subscription: name, enabled: sub.subenabled, handover_lsn: h });
      await waitUntil(
        'the node synchronized',
        async () => {
          const s = await initStatus(node);
          if (s.state === 'failed') throw new Error(`the init failed: ${JSON.stringify(s.progress?.error ?? s)}`);
          return s.state === 'synchronized';
        },
        90000,
      );
      // The origin moved to H once, before the subscription first streamed:
      // by the new agent unless the killed one had (its log line may not
      // have made it out). Enabled only after that, so from H on.
      if (sub.subenabled) expect(await lsnCompare(node.url, at, h)).toBeGreaterThanOrEqual(0);
      else expect([null, h]).toContain(at);
      const advanced = second.lines.filter((l) => l.event === 'init.origin_advanced');
      if (sub.subenabled || at === h) expect(advanced).toEqual([]);
      else expect(advanced).toEqual([expect.objectContaining({ origin: `pg_${sub.oid}`, from: null, to: h })]);
      expect(first.lines.filter((l) => l.event === 'init.origin_advanced').length + advanced.length).toBeLessThanOrEqual(1);
      expect(second.lines.filter((l) => l.event === 'init.subscription_created')).toEqual([]);
      expect((await initStatus(node)).method_state).toMatchObject({ backup: 'pg_dump', source_lsn: h, copy_data: false, subscription_oid: String(sub.oid) });

      // writes after the resume arrive too
      const after = w.counts.transactions;
      await waitUntil('writes after the resume', () => w.counts.transactions > after + 100 || w.error, 60000);
      await w.stop();
      await waitCaughtUp(killPair, name);
      expect(await contentHashes(node.url)).toEqual(await contentHashes(source.url));
      // a change applied twice would have failed on its key
      expect(await workerErrors(node.url)).toBe(0);
      expect(await query(node.url, 'SELECT subname, subslotname, subenabled FROM pg_subscription WHERE subname = $1', [name])).toEqual([
        { subname: name, subslotname: name, subenabled: true },
      ]);
      expect(await preparedSlot(source, name)).toMatchObject({ active: true });
      expect(await query(source.url, 'SELECT slot_name FROM steep_repl.init_slots WHERE slot_name = $1', [name])).toEqual([]);
      expect(second.lines.filter((l) => l.level === 'error')).toEqual([]);
    } finally {
      await w.stop().catch(() => undefined);
      if (run && run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
      await first?.stop('SIGKILL');
      await second?.stop('SIGKILL');
    }
  });
});
