// The replication building blocks later methods stand on, proven on real
// servers: a slot with an exported snapshot gives one consistent instant; a
// copy read at it plus a subscription from that slot (create_slot = false,
// copy_data = false) ends identical to the source under writes, with no row
// lost or applied twice; a subscription is found by its oid after a rename;
// a prepared slot is made exactly once, also by a run killed half-way; the
// stream check before SYNCHRONIZED passes a sound stream and fails a broken one.
import { Client } from 'pg';
import { getNode } from '../lib/sql/getNode';
import { getSlotLag } from '../lib/sql/getSlotLag';
import { nodeConninfo } from '../lib/connection';
import { ensurePublication, dropPublication } from '../agent/replication/publication';
import { createSlotWithSnapshot } from '../lib/slot-with-snapshot';
import { createSubscription, dropSubscription, findSubscription } from '../agent/replication/subscription';
import { prepareSlot } from '../agent/replication/topology';
import { readSourcePublication, StreamRun, verifyStream } from '../agent/init/verify-stream';
import { MethodState } from '../lib/sql/getInitStatus';
import { currentLsn } from '../agent/replication/slot';
import { clusterA, clusterB, query } from './support/clusters';
import { createInitPair, InitPair, tableHash, waitCaughtUp } from './support/init-pair';

jest.setTimeout(60000);

describe('replication building blocks', () => {
  let pair: InitPair;
  let source: Client;
  let target: Client;
  const slotName = 'steep_test_exported_slot';
  const table = { schema_name: 'public', table_name: 'accounts', label: 'public.accounts' };

  beforeAll(async () => {
    pair = await createInitPair({ tag: 'repl_blocks', sourceCluster: clusterA(), targetCluster: clusterB(), rows: 2000 });
    source = new Client({ connectionString: pair.source.url });
    target = new Client({ connectionString: pair.target.url });
    await source.connect();
    await target.connect();
  });
  afterAll(async () => {
    await source?.end();
    await target?.end();
    await pair?.drop();
  });

  it('copies at the exported snapshot and streams from its slot: identical, nothing lost or applied twice', async () => {
    const sourceNode = await getNode(target, pair.source.id);
    // First: pgoutput decodes a change with the publications as they were when it was written.
    await ensurePublication(source, slotName, [table]);
    const slot = await createSlotWithSnapshot(sourceNode, slotName);
    expect(slot.snapshotName).toMatch(/^[0-9A-F]+-[0-9A-F]+-\d+$/);
    // Written after the slot: invisible to the snapshot, carried by the slot.
    await query(pair.source.url, "INSERT INTO public.accounts SELECT g, g, 'after the slot' FROM generate_series(100001, 100100) g");
    await query(pair.source.url, "UPDATE public.accounts SET note = 'updated after the slot' WHERE id <= 10");

    const reader = new Client({ connectionString: pair.source.url });
    await reader.connect();
    try {
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await reader.query(`SET TRANSACTION SNAPSHOT '${slot.snapshotName}'`);
      const { rows } = await reader.query('SELECT id, balance::text, note FROM public.accounts ORDER BY id');
      expect(rows).toHaveLength(2000);
      expect(rows.filter((r) => r.note === 'updated after the slot')).toEqual([]);
      await target.query(
        'INSERT INTO public.accounts SELECT * FROM unnest($1::int[], $2::numeric[], $3::text[])',
        [rows.map((r) => r.id), rows.map((r) => r.balance), rows.map((r) => r.note)],
      );
      await reader.query('COMMIT');
    } finally {
      await reader.end();
      await slot.release();
    }

    const subscription = await createSubscription(target, {
      name: slotName,
      conninfo: nodeConninfo(sourceNode),
      publication: slotName,
      slotName,
      copyData: false,
      createSlot: false,
    });
    expect(subscription.slot_name).toBe(slotName);
    await query(pair.source.url, "INSERT INTO public.accounts SELECT g, g, 'while streaming' FROM generate_series(100101, 100150) g");
    await query(pair.source.url, 'DELETE FROM public.accounts WHERE id BETWEEN 11 AND 20');
    await waitCaughtUp(pair, slotName);
    const lag = await getSlotLag(source, slotName);
    expect(lag).toMatchObject({ slot_exists: true, active: true });
    expect(await tableHash(target, 'public.accounts')).toBe(await tableHash(source, 'public.accounts'));
    expect((await target.query('SELECT count(*)::int AS n FROM public.accounts')).rows[0].n).toBe(2000 + 100 + 50 - 10);

    // Found by oid once renamed; the name it had finds nothing.
    await target.query(`ALTER SUBSCRIPTION ${slotName} RENAME TO renamed_by_a_dba`);
    expect(await findSubscription(target, slotName, subscription.oid)).toMatchObject({ oid: subscription.oid, name: 'renamed_by_a_dba' });
    expect(await findSubscription(target, slotName)).toBeUndefined();
    await dropSubscription(target, 'renamed_by_a_dba');
    await dropPublication(source, slotName);
    expect(await getSlotLag(source, slotName)).toMatchObject({ slot_exists: false, lag_bytes: null, reached: false });
  });

  it('prepares a slot in three steps: a run killed between them finishes it; one that cannot be made leaves nothing', async () => {
    const prepared = (name: string, ttlSeconds = 3600) =>
      prepareSlot(source, { slotName: name, forNode: pair.target.id, purpose: 'reverse', publication: 'steep_test_prepared', ttlSeconds });
    const slotOf = async (name: string) =>
      (await query(pair.source.url, 'SELECT confirmed_flush_lsn::text AS lsn, active FROM pg_replication_slots WHERE slot_name = $1', [name]))[0];
    const rowOf = async (name: string) =>
      (await query(pair.source.url, 'SELECT lsn::text, for_node FROM steep_repl.init_slots WHERE slot_name = $1', [name]))[0];
    await ensurePublication(source, 'steep_test_prepared', [table]);

    const fresh = await prepared('steep_test_prepared_fresh');
    expect(fresh.lsn).toBe((await slotOf('steep_test_prepared_fresh')).lsn);
    expect(await rowOf('steep_test_prepared_fresh')).toEqual({ lsn: fresh.lsn, for_node: pair.target.id });
    // again (a resumed finalize): the same slot, not a second one
    expect((await prepared('steep_test_prepared_fresh')).lsn).toBe(fresh.lsn);

    // killed after the row and the slot, before the LSN was recorded
    await query(pair.source.url, "SELECT steep_repl.prepare_slot('steep_test_prepared_killed', $1, 'reverse', 'steep_test_prepared', interval '1 hour')", [pair.target.id]);
    await query(pair.source.url, "SELECT pg_create_logical_replication_slot('steep_test_prepared_killed', 'pgoutput')");
    const madeAt = (await slotOf('steep_test_prepared_killed')).lsn;
    await query(pair.source.url, "INSERT INTO public.accounts VALUES (-50, 1, 'after the slot, before the rerun')");
    const finished = await prepared('steep_test_prepared_killed');
    expect(finished.lsn).toBe(madeAt);
    expect(await rowOf('steep_test_prepared_killed')).toEqual({ lsn: madeAt, for_node: pair.target.id });

    // a slot that cannot be made (a physical slot holds the name): the row goes too
    await query(pair.source.url, "SELECT steep_repl.prepare_slot('steep_test_prepared_clash', $1, 'reverse', 'steep_test_prepared', interval '1 hour')", [pair.target.id]);
    await query(pair.source.url, "SELECT pg_create_physical_replication_slot('steep_test_prepared_clash')");
    await expect(prepared('steep_test_prepared_clash')).rejects.toThrow(/steep_test_prepared_clash/);
    expect(await rowOf('steep_test_prepared_clash')).toBeUndefined();

    await query(pair.source.url, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'steep_test_prepared%'");
    await query(pair.source.url, "DELETE FROM steep_repl.init_slots WHERE slot_name LIKE 'steep_test_prepared%'");
    await query(pair.source.url, 'DELETE FROM public.accounts WHERE id = -50');
    await dropPublication(source, 'steep_test_prepared');
  });

  it('the stream check after catch-up passes a sound stream, and names a table dropped from the publication or a disabled subscription', async () => {
    const name = 'steep_test_verify';
    const verifyTable = { schema_name: 'public', table_name: 'Verify ü', label: 'public."Verify ü"' };
    for (const url of [pair.source.url, pair.target.url]) await query(url, 'CREATE TABLE public."Verify ü" (id int PRIMARY KEY, v text)');
    await query(pair.source.url, `INSERT INTO public."Verify ü" SELECT g, 'v' || g FROM generate_series(1, 200) g`);
    const sourceNode = await getNode(target, pair.source.id);
    await ensurePublication(source, name, [verifyTable]);
    const subscription = await createSubscription(target, { name, conninfo: nodeConninfo(sourceNode), publication: name, slotName: name, copyData: true, createSlot: true });
    const state = {
      replication_name: name,
      slot_name: name,
      subscription_oid: subscription.oid,
      source_publication: await readSourcePublication(source, name),
    } as MethodState;
    const run: StreamRun = {
      nodeId: pair.target.id,
      target,
      sourceNode,
      state,
      withSource: (fn) => fn(source),
      pause: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      checkpoint: () => undefined,
      record: async () => undefined,
    };
    try {
      await query(pair.source.url, `INSERT INTO public."Verify ü" VALUES (201, 'after the copy began')`);
      const lsnTarget = await currentLsn(source);
      // waits while the table is not yet ready and the slot has not confirmed the target
      await verifyStream(run, [verifyTable], 'after catch-up', lsnTarget);
      expect(await tableHash(target, 'public."Verify ü"')).toBe(await tableHash(source, 'public."Verify ü"'));

      await query(pair.source.url, `ALTER PUBLICATION ${name} DROP TABLE public."Verify ü"`);
      await expect(verifyStream(run, [verifyTable], 'after catch-up', lsnTarget)).rejects.toThrow(
        'after catch-up: the table public."Verify ü" was removed from the publication steep_test_verify on source node',
      );
      await query(pair.source.url, `ALTER PUBLICATION ${name} ADD TABLE public."Verify ü"`);
      await target.query(`ALTER SUBSCRIPTION ${name} DISABLE`);
      await expect(verifyStream(run, [verifyTable], 'after catch-up', lsnTarget)).rejects.toThrow(
        `after catch-up: the subscription ${name} is disabled on node ${pair.target.id}`,
      );
    } finally {
      await target.query(`ALTER SUBSCRIPTION ${name} DISABLE`).catch(() => undefined);
      await dropSubscription(target, name);
      await dropPublication(source, name);
      for (const url of [pair.source.url, pair.target.url]) await query(url, 'DROP TABLE public."Verify ü"');
    }
  });
});
