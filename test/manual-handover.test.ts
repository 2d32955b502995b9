// The manual init's handover check (lib/manual/handover.ts) alone, one
// refusal at a time, on the shared PG18 clusters: what node complete's
// pre-check and the agent's init_manual refuse before anything is
// subscribed. The prepare is made here from the building blocks
// (prepare_slot, the slot, prepared_slot_created, the manual columns), so
// every fact can be bent; a base backup's end of recovery is given as
// steep_repl.recovery_end() would report it. End to end is
// test/manual-dump.test.ts and test/manual-basebackup.test.ts.
import { Client } from 'pg';
import { handoverProblems, HandoverCheck, HandoverInput, RecoveryEnd } from '../lib/manual/handover';
import { Queryable } from '../lib/sql/queryable';
import { createSlotWithSnapshotOn, ExportedSlot } from '../lib/slot-with-snapshot';
import { clusterA, clusterB, dropDatabase, query } from './support/clusters';
import { createNodeDb, dropReplicationObjects, NodeDb, registerPair } from './support/node-pair';
import { waitUntil } from './support/wait';

jest.setTimeout(60000);

let source: NodeDb;
let target: NodeDb;
let name: string;
let sourceClient: Client;
let targetClient: Client;
let systemId: string;

beforeAll(async () => {
  source = await createNodeDb(clusterA(), 'manual_handover_src', 'Nöde "S"');
  target = await createNodeDb(clusterB(), 'manual_handover_tgt', 'nöde t');
  await registerPair(source, target);
  await query(source.url, 'CREATE TABLE public.items (id int PRIMARY KEY, v text); INSERT INTO public.items SELECT g, md5(g::text) FROM generate_series(1, 100) g');
  [{ name }] = await query(source.url, 'SELECT steep_repl.replication_name($1, $2) AS name', [source.id, target.id]);
  sourceClient = new Client({ connectionString: source.url });
  targetClient = new Client({ connectionString: target.url });
  await sourceClient.connect();
  await targetClient.connect();
  [{ id: systemId }] = await query(source.url, 'SELECT system_identifier::text AS id FROM pg_control_system()');
});

afterAll(async () => {
  await sourceClient?.end();
  await targetClient?.end();
  await query(clusterA().url(), 'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [name]).catch(() => undefined);
  if (source && target) await dropReplicationObjects([target, source]);
  if (target) await dropDatabase(target.cluster, target.name).catch(() => undefined);
  if (source) await dropDatabase(source.cluster, source.name).catch(() => undefined);
});

let holder: ExportedSlot | undefined;

// Each case starts from nothing prepared.
afterEach(async () => {
  await holder?.release();
  holder = undefined;
  await waitUntil('no walsender of this test', async () => !(await query(clusterA().url(), "SELECT 1 FROM pg_stat_activity WHERE application_name = 'steep-repl prepare' AND datname = $1", [source.name])).length, 10000, 50);
  await query(clusterA().url(), 'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [name]);
  await query(source.url, 'DELETE FROM steep_repl.init_slots');
  await query(source.url, 'DROP PUBLICATION IF EXISTS ' + ident(name));
});

const ident = (n: string) => `"${n.replace(/"/g, '""')}"`;

interface Prepared {
  lsn: string;
  timeline: number;
  snapshotName?: string;
}

// What node prepare makes: the publication, the init_slots row, the slot
// (on a replication connection holding its exported snapshot, for pg_dump),
// the row finished with the slot's LSN, the backup and the timeline.
async function prepare(options: { backup?: 'pg_dump' | 'pg_basebackup'; forNode?: string; purpose?: string; hold?: boolean } = {}): Promise<Prepared> {
  const backup = options.backup ?? 'pg_dump';
  await query(source.url, `CREATE PUBLICATION ${ident(name)} FOR TABLE public.items WITH (publish_via_partition_root = true)`);
  await query(source.url, "SELECT steep_repl.prepare_slot($1, $2, $3, $1, interval '1 day')", [name, options.forNode ?? target.id, options.purpose ?? 'manual']);
  let lsn: string;
  let snapshotName: string | undefined;
  if (options.hold) {
    holder = await createSlotWithSnapshotOn({ connectionString: source.url, application_name: 'steep-repl prepare' }, source.name, name);
    lsn = holder.consistentLsn;
    snapshotName = holder.snapshotName;
  } else {
    [{ lsn }] = await query(source.url, "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", [name]);
  }
  await query(source.url, 'SELECT steep_repl.prepared_slot_created($1, $2)', [name, lsn]);
  const [{ timeline }] = await query(source.url, "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS timeline");
  const manual = (options.purpose ?? 'manual') === 'manual';
  await query(source.url, 'UPDATE steep_repl.init_slots SET backup = $2, timeline = $3, snapshot_name = $4 WHERE slot_name = $1', [
    name,
    manual ? backup : null,
    manual ? timeline : null,
    snapshotName ?? null,
  ]);
  return { lsn, timeline, snapshotName };
}

function check(p: Partial<HandoverInput> = {}, on: { target?: Queryable } = {}): Promise<HandoverCheck> {
  return handoverProblems(sourceClient, on.target ?? targetClient, { targetNodeId: target.id, slotName: name, backup: 'pg_dump', ...p });
}

// The problems as one text, for matching.
const text = (h: HandoverCheck) => h.problems.join('\n');

// pg_lsn arithmetic done by the server.
async function lsnPlus(lsn: string, bytes: number | string): Promise<string> {
  return (await query(source.url, 'SELECT ($1::pg_lsn + $2::numeric)::text AS l', [lsn, String(bytes)]))[0].l;
}

// A base backup's end of recovery that stopped exactly right before H.
function recoveredAt(h: string, p: Prepared, over: Partial<RecoveryEnd> = {}): RecoveryEnd {
  return {
    in_recovery: false,
    timeline: p.timeline + 1,
    parent_timeline: p.timeline,
    switchpoint: h,
    stop: 'before',
    stop_lsn: h,
    reason: `before LSN ${h}`,
    system_identifier: systemId,
    ...over,
  };
}

describe('handover check: pg_dump', () => {
  it('passes a fresh prepare: H is the slot LSN', async () => {
    const p = await prepare();
    const h = await check();
    expect(h.problems).toEqual([]);
    expect(h.hint).toBe('');
    expect(h.handoverLsn).toBe(p.lsn);
    expect(h.slot).toMatchObject({ lsn: p.lsn, confirmed_flush_lsn: p.lsn, purpose: 'manual', backup: 'pg_dump', for_node: target.id, slot_exists: true, held_by_prepare: false });
  });

  it("finds node prepare's snapshot holder by the snapshot's name, though the slot is not active", async () => {
    const p = await prepare({ hold: true });
    const [slot] = await query(source.url, 'SELECT active FROM pg_replication_slots WHERE slot_name = $1', [name]);
    expect(slot.active).toBe(false);
    const h = await check();
    expect(h.problems).toEqual([]);
    expect(h.slot).toMatchObject({ snapshot_name: p.snapshotName, held_by_prepare: true, holder_pid: holder!.holderPid });
  });

  it('refuses a target nothing was prepared for', async () => {
    const h = await check();
    expect(text(h)).toContain(`source node ${source.id} holds no prepared slot ${name}`);
    expect(text(h)).toContain(`there is no replication slot ${name}`);
    expect(h.hint).toContain(`steep-repl node prepare 'nöde t' --from 'Nöde "S"' --for pg_dump`);
    expect(h.handoverLsn).toBeUndefined();
  });

  it("refuses a prepare for another node, another purpose, another backup", async () => {
    await prepare({ forNode: source.id });
    expect(text(await check())).toContain(`was prepared for node ${source.id}, not ${target.id}`);
    await resetPrepare();
    await prepare({ purpose: 'reverse' });
    expect(text(await check())).toContain('is for a reverse init, not a manual one');
    await resetPrepare();
    await prepare({ backup: 'pg_dump' });
    const h = await check({ backup: 'pg_basebackup', recoveryEnd: recoveredAt('0/1', { lsn: '0/1', timeline: 1 }) });
    expect(text(h)).toContain('was prepared for pg_dump, not pg_basebackup');
  });

  it('refuses an unfinished prepare (no LSN recorded)', async () => {
    await prepare();
    await query(source.url, 'UPDATE steep_repl.init_slots SET lsn = NULL');
    const h = await check();
    expect(text(h)).toContain('was never finished');
    expect(h.handoverLsn).toBeUndefined();
    expect(h.hint).toContain(`steep-repl node cancel 'nöde t'`);
  });

  it('refuses an expired prepare', async () => {
    await prepare();
    await query(source.url, "UPDATE steep_repl.init_slots SET expires_at = now() - interval '1 second'");
    expect(text(await check())).toMatch(/expired at /);
  });

  it('refuses when the slot is gone, or is not a logical pgoutput slot of this database', async () => {
    await prepare();
    await query(source.url, 'SELECT pg_drop_replication_slot($1)', [name]);
    expect(text(await check())).toContain(`there is no replication slot ${name} on source node ${source.id}`);
    // the same name in another database of the server
    await query(clusterA().url(), "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [name]);
    expect(text(await check())).toContain(`belongs to database postgres, not to the source's database ${source.name}`);
    await query(clusterA().url(), 'SELECT pg_drop_replication_slot($1)', [name]);
    await query(clusterA().url(), 'SELECT pg_create_physical_replication_slot($1)', [name]);
    expect(text(await check())).toContain('is a physical slot, not a logical pgoutput one');
  });

  it('refuses when the publication made before the slot is gone', async () => {
    await prepare();
    await query(source.url, `DROP PUBLICATION ${ident(name)}`);
    expect(text(await check())).toContain(`the publication ${name} on source node ${source.id} no longer exists`);
  });

  it('refuses a slot that confirmed past H, naming both LSNs', async () => {
    const p = await prepare();
    await write(1000, 'x');
    const [{ lsn: moved }] = await query(source.url, 'SELECT end_lsn::text AS lsn FROM pg_replication_slot_advance($1, pg_current_wal_lsn())', [name]);
    const h = await check();
    expect(text(h)).toContain(`has confirmed ${moved}, past the handover point ${p.lsn} (the slot's LSN): the changes between ${p.lsn} and ${moved} are gone`);
  });

  it('takes --source-lsn L as H: malformed, behind the slot, past the source, at or after the slot', async () => {
    const p = await prepare();
    for (const bad of ['16/B374D84G', '0/', 'abc', '1/2/3', '123456789/0', ' 0/1']) {
      const h = await check({ sourceLsn: bad });
      expect(text(h)).toContain(`--source-lsn '${bad}' is not an LSN`);
      expect(h.handoverLsn).toBeUndefined();
    }
    // behind the slot: the slot starts at X, what lies between L and X is not in it
    const behind = await lsnPlus(p.lsn, -1);
    expect(text(await check({ sourceLsn: behind }))).toContain(`has confirmed ${p.lsn}, past the handover point ${behind} (--source-lsn)`);
    // where the source has not written yet
    const [{ lsn: far }] = await query(source.url, "SELECT (pg_current_wal_insert_lsn() + 1000000000)::text AS lsn");
    expect(text(await check({ sourceLsn: far }))).toContain(`--source-lsn ${far} is past source node ${source.id}'s current WAL position`);
    // at the slot, given in lower case: the same H as pg_lsn prints it
    const same = await check({ sourceLsn: p.lsn.toLowerCase() });
    expect(same.problems).toEqual([]);
    expect(same.handoverLsn).toBe(p.lsn);
    // after the slot (the source wrote since): the origin starts there
    await write(1001, 'y');
    const [{ lsn: later }] = await query(source.url, 'SELECT pg_current_wal_lsn()::text AS lsn');
    const ahead = await check({ sourceLsn: later });
    expect(ahead.problems).toEqual([]);
    expect(ahead.handoverLsn).toBe(later);
  });

  it('refuses a target server without logical replication workers', async () => {
    await prepare();
    const h = await check({}, { target: withSetting(targetClient, 'max_logical_replication_workers', '0') });
    expect(text(h)).toContain('max_logical_replication_workers is 0 on the target');
    expect(h.hint).toContain('ALTER SYSTEM RESET max_logical_replication_workers');
  });

  it('lists every problem at once, each with its numbers, and one hint for them', async () => {
    const p = await prepare();
    await query(source.url, "UPDATE steep_repl.init_slots SET expires_at = now() - interval '1 second'");
    await query(source.url, `DROP PUBLICATION ${ident(name)}`);
    const h = await check({ sourceLsn: await lsnPlus(p.lsn, -16) });
    expect(h.problems).toHaveLength(3);
    expect(text(h)).toMatch(/expired at [\s\S]*no longer exists[\s\S]*past the handover point/);
    // the same way on given once
    expect(h.hint.match(/then prepare again/g)).toHaveLength(2);
    expect(h.hint).toContain('give no --source-lsn if the backup was made for this prepare');
  });

  it('refuses a slot something else streams from (a subscription)', async () => {
    const p = await prepare();
    const conninfo = `host=${source.cluster.host} port=${source.cluster.port} dbname=${source.name} user=${source.cluster.user}`;
    await query(target.url, `CREATE TABLE public.items (id int PRIMARY KEY, v text)`);
    await query(target.url, `CREATE SUBSCRIPTION intruder CONNECTION '${conninfo}' PUBLICATION ${ident(name)} WITH (create_slot = false, copy_data = false, slot_name = '${name}')`);
    try {
      await waitUntil('the subscription to stream from the slot', async () => (await query(source.url, 'SELECT active FROM pg_replication_slots WHERE slot_name = $1', [name]))[0]?.active, 20000);
      const h = await check();
      expect(text(h)).toMatch(new RegExp(`the slot ${name} on source node .* is in use by process \\d+ \\(application_name 'intruder'\\), not by node prepare's snapshot holder`));
      expect(h.hint).toMatch(/pg_terminate_backend\(\d+\)/);
    } finally {
      await query(target.url, 'ALTER SUBSCRIPTION intruder DISABLE');
      await query(target.url, 'ALTER SUBSCRIPTION intruder SET (slot_name = NONE)');
      await query(target.url, 'DROP SUBSCRIPTION intruder');
      await query(target.url, 'DROP TABLE public.items');
      await waitUntil('the slot to be free', async () => !(await query(source.url, 'SELECT active FROM pg_replication_slots WHERE slot_name = $1', [name]))[0]?.active, 20000);
    }
    expect(p.lsn).toBeTruthy();
  });
});

describe('handover check: pg_basebackup', () => {
  it('passes a copy that stopped right before H on the slot\'s timeline, comparing LSNs as LSNs', async () => {
    const p = await prepare({ backup: 'pg_basebackup' });
    expect((await check({ backup: 'pg_basebackup', recoveryEnd: recoveredAt(p.lsn, p) })).problems).toEqual([]);
    // Y past H (nothing starts in between) and a switchpoint before H, written so that a
    // comparison of the texts gets them wrong: 'h/1000…' (one digit more) sorts before H,
    // 'h/FFF…' (one digit less) after it
    const [hi, lo] = p.lsn.split('/');
    const y = lo.length < 8 ? `${hi}/1${'0'.repeat(lo.length)}` : `${(parseInt(hi, 16) + 1).toString(16).toUpperCase()}/0`;
    const sp = `${hi}/${'F'.repeat(Math.max(1, lo.length - 1))}`;
    expect(y < p.lsn || sp > p.lsn).toBe(true);
    const [order] = await query(source.url, 'SELECT $1::pg_lsn > $3::pg_lsn AS y_after, $2::pg_lsn < $3::pg_lsn AS sp_before', [y, sp, p.lsn]);
    expect(order).toEqual({ y_after: true, sp_before: true });
    const h = await check({ backup: 'pg_basebackup', recoveryEnd: recoveredAt(p.lsn, p, { stop_lsn: y, reason: `before LSN ${y}`, switchpoint: sp }) });
    expect(h.problems).toEqual([]);
  });

  it('refuses a copy still in recovery, or never promoted', async () => {
    const p = await prepare({ backup: 'pg_basebackup' });
    const inRecovery = await check({ backup: 'pg_basebackup', recoveryEnd: { ...recoveredAt(p.lsn, p), in_recovery: true } });
    expect(text(inRecovery)).toContain(`still in recovery: it has not reached its recovery target ${p.lsn} and promoted`);
    const never = await check({ backup: 'pg_basebackup', recoveryEnd: { ...recoveredAt(p.lsn, p), timeline: 1, parent_timeline: null, switchpoint: null, stop: null, stop_lsn: null, reason: null } });
    expect(text(never)).toContain('was not promoted at a recovery target (timeline 1, no timeline history)');
    expect(never.hint).toContain(`recovery_target_lsn = '${p.lsn}', recovery_target_inclusive = off`);
  });

  it("reads the end of recovery from the target when none is given (a server never restored: refused)", async () => {
    await prepare({ backup: 'pg_basebackup' });
    const h = await check({ backup: 'pg_basebackup' });
    expect(text(h)).toContain('this server was not promoted at a recovery target (timeline 1, no timeline history)');
  });

  it('refuses a copy that replayed past H, or stopped short of it', async () => {
    const p = await prepare({ backup: 'pg_basebackup' });
    const bb = (over: Partial<RecoveryEnd>) => check({ backup: 'pg_basebackup', recoveryEnd: recoveredAt(p.lsn, p, over) });
    // recovery_target_inclusive = on: the record at H was replayed too
    const after = await bb({ stop: 'after', reason: `after LSN ${p.lsn}`, switchpoint: await lsnPlus(p.lsn, 80) });
    expect(text(after)).toContain(`not "before LSN ${p.lsn}": it replayed the record at ${p.lsn} too (recovery_target_inclusive = on)`);
    expect(text(after)).toContain('past the handover point');
    // no recovery target: replayed to the end of the WAL it had
    const noTarget = await bb({ stop: null, stop_lsn: null, reason: 'no recovery target specified', switchpoint: await lsnPlus(p.lsn, 4096) });
    expect(text(noTarget)).toContain('recovery ended with "no recovery target specified"');
    expect(text(noTarget)).toContain(`it did not stop at the handover point ${p.lsn}`);
    // a target set before H
    const early = await lsnPlus(p.lsn, -200);
    const short = await bb({ stop_lsn: early, reason: `before LSN ${early}`, switchpoint: early });
    expect(text(short)).toContain(`it stopped before ${early}, which is before the handover point ${p.lsn}, so the transactions committed between ${early} and ${p.lsn} are in neither the copy nor the slot`);
    // a target set after H: stopped "before" a later record, having replayed what lies between
    const late = await lsnPlus(p.lsn, 200);
    const long = await bb({ stop_lsn: late, reason: `before LSN ${late}`, switchpoint: late });
    expect(long.problems).toHaveLength(1);
    expect(text(long)).toContain(`it replayed WAL up to ${late}, past the handover point ${p.lsn}`);
  });

  it('refuses a copy of another timeline or another server', async () => {
    const p = await prepare({ backup: 'pg_basebackup' });
    const otherTimeline = await check({ backup: 'pg_basebackup', recoveryEnd: recoveredAt(p.lsn, p, { parent_timeline: p.timeline + 1, timeline: p.timeline + 2 }) });
    expect(text(otherTimeline)).toContain(`branched from timeline ${p.timeline + 1}, but the slot was made when source node ${source.id} was on timeline ${p.timeline}`);
    const otherServer = await check({ backup: 'pg_basebackup', recoveryEnd: recoveredAt(p.lsn, p, { system_identifier: '1234567890123456789' }) });
    expect(text(otherServer)).toContain(`system identifier 1234567890123456789, source node ${source.id}'s ${systemId}: it is not a base backup of that server`);
  });

  it("refuses a copy holding the source's prepared transactions, with the statements that roll them back", async () => {
    const p = await prepare({ backup: 'pg_basebackup' });
    // (the shared clusters have max_prepared_transactions = 0: the copy's list is given)
    const copy = withRows(targetClient, /pg_prepared_xacts/, [{ gid: "tx 'one'", prepared: '2026-01-01 00:00:00+00' }, { gid: 'two', prepared: '2026-01-01 00:00:01+00' }]);
    const h = await check({ backup: 'pg_basebackup', recoveryEnd: recoveredAt(p.lsn, p) }, { target: copy });
    expect(h.problems).toHaveLength(1);
    expect(text(h)).toContain(`this copy holds 2 prepared transaction(s) of source node ${source.id} ('tx 'one'', 'two')`);
    expect(h.hint).toContain(`ROLLBACK PREPARED 'tx ''one''';`);
    expect(h.hint).toContain(`ROLLBACK PREPARED 'two';`);
    // a pg_dump target is not asked: a dump holds no prepared transactions
    expect((await check({}, { target: copy })).problems).toEqual([`the slot ${name} on source node ${source.id} was prepared for pg_basebackup, not pg_dump`]);
  });

  it('checks the end of recovery against --source-lsn when given', async () => {
    const p = await prepare({ backup: 'pg_basebackup' });
    await write(2000, 'z');
    const [{ lsn: l }] = await query(source.url, 'SELECT pg_current_wal_lsn()::text AS lsn');
    // stopped at the slot's LSN, but the backup is said to be at L: what lies between would be lost
    const atSlot = await check({ backup: 'pg_basebackup', sourceLsn: l, recoveryEnd: recoveredAt(p.lsn, p) });
    expect(text(atSlot)).toContain(`which is before the handover point ${l}`);
    expect((await check({ backup: 'pg_basebackup', sourceLsn: l, recoveryEnd: recoveredAt(l, p) })).problems).toEqual([]);
  });
});

async function resetPrepare(): Promise<void> {
  await query(source.url, 'SELECT pg_drop_replication_slot($1)', [name]);
  await query(source.url, 'DELETE FROM steep_repl.init_slots');
  await query(source.url, `DROP PUBLICATION IF EXISTS ${ident(name)}`);
}

// The target as the check sees it, with the rows of one query given.
function withRows(db: Client, sql: RegExp, rows: unknown[]): Queryable {
  return { query: (text: string, values?: unknown[]) => (sql.test(text) ? Promise.resolve({ rows }) : db.query(text, values)) };
}

// The target as the check sees it, with one setting answered otherwise
// (a server setting the shared cluster cannot change for one test).
function withSetting(db: Client, setting: string, value: string): Queryable {
  return {
    query: (sql: string, values?: unknown[]) =>
      /current_setting\(\$1, true\)/.test(sql) && values?.[0] === setting ? Promise.resolve({ rows: [{ v: value }] }) : db.query(sql, values),
  };
}

// A row written and flushed: pg_current_wal_lsn() and a slot advance reach past it.
async function write(id: number, v: string): Promise<void> {
  await query(source.url, `SET synchronous_commit = on; INSERT INTO public.items VALUES (${id}, '${v}')`);
}
