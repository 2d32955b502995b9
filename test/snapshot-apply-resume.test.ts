// Two-phase apply resumes and cancels exactly (issue 11), with a writer on
// the source all along: the target's agent SIGKILLed mid-load is followed
// by one that loads only the parts not yet done (the others keep their one
// copy) and ends identical; a file damaged after the verification fails
// its part, rolled back, and the apply resumes once it is mended; a cancel
// mid-load removes what the apply made (its copy of the slot, the pair's
// publication, the loaded rows) and leaves the snapshot usable: its slot
// and publication intact, a second apply of it works. The load is made
// slow with STEEP_REPL_COPY_MAX_RATE.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { clusterA, clusterB, query } from './support/clusters';
import { contentHashes, createInitPair, InitPair, initStatus, sourceWrites, waitCaughtUp } from './support/init-pair';
import { AgentProcess, stopAllAgents } from './support/processes';
import { generateSnapshot, startApply, waitSynchronized } from './support/snapshot-apply';
import { brief, partKey, PartRow, partsOf } from './support/init-parts';
import { waitUntil } from './support/wait';
import { startWriter, Writer } from './support/writer';

jest.setTimeout(180000);

const rows = 40000;
// Bytes per second per load worker: a part of about 1 MB takes some 3 s.
const slowLoad = { STEEP_REPL_COPY_MAX_RATE: '300000' };

// A part loaded, and one loading with rows in it, well short of its end.
async function waitMidLoad(pair: InitPair, agent: AgentProcess): Promise<PartRow[]> {
  return waitUntil(
    'parts loaded and one half loaded',
    async () => {
      const s = await initStatus(pair.target);
      if (s.state === 'failed') throw new Error(`apply failed: ${s.progress?.error}\n${agent.raw.slice(-30).join('\n')}`);
      const parts = await partsOf(pair);
      const halfway = parts.some((p) => p.state === 'copying' && p.rows_copied > 0 && p.rows_copied < 0.7 * p.rows_estimate);
      return parts.some((p) => p.state === 'done') && halfway ? parts : undefined;
    },
    60000,
    100,
  );
}

async function waitLoadSessionsGone(pair: InitPair): Promise<void> {
  await waitUntil('the load sessions to end', async () => {
    const [{ n }] = await query(pair.target.url, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'steep-repl copy'");
    return n === 0;
  });
}

const snapshotOptions = { parallel: 2, compression: 'zstd', split_tables_larger_than: '1MB', max_parts: 4 };

describe('two-phase apply resume and cancel', () => {
  const pairs: InitPair[] = [];
  const writers: Writer[] = [];
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'steep-snapshot-resume-'));

  const setUp = async (tag: string, options: Record<string, unknown> = {}) => {
    const pair = await createInitPair({ tag, sourceCluster: clusterA(), targetCluster: clusterB(), rows, sourceId: `Sourçe ${tag}`, targetId: `Tärget "${tag}"` });
    pairs.push(pair);
    await AgentProcess.start(pair.source.url);
    const writer = startWriter(pair.source.url, sourceWrites(rows), { pauseMs: 10 });
    writers.push(writer);
    const id = await generateSnapshot(pair.source, path.join(root, tag), { ...snapshotOptions, ...options });
    return { pair, writer, id };
  };

  // The servers are shared with the other test files: a pair's subscription
  // (and its replication origin) and databases go as soon as its test is over.
  const tearDown = async (pair: InitPair) => {
    await stopAllAgents();
    await pair.drop();
    pairs.splice(pairs.indexOf(pair), 1);
  };

  afterAll(async () => {
    await Promise.all(writers.map((w) => w.stop().catch(() => undefined)));
    await stopAllAgents();
    for (const pair of pairs) await pair.drop().catch(() => undefined);
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('agent SIGKILLed mid-load, its slot copy expired meanwhile: a new agent copies the slot again, loads only the parts not yet done, and the target ends identical', async () => {
    const { pair, writer, id } = await setUp('apply_kill');
    let agent = await AgentProcess.start(pair.target.url, [], slowLoad);
    await startApply(pair.target, pair.source, id, { parallel: 2 });
    await waitMidLoad(pair, agent);
    await agent.stop('SIGKILL');
    await waitLoadSessionsGone(pair);
    const atKill = await partsOf(pair);
    console.log(`at the kill: ${brief(atKill)}`);
    const doneBefore = atKill.filter((p) => p.state === 'done');
    const cut = atKill.filter((p) => p.state === 'copying');
    expect(doneBefore.length).toBeGreaterThanOrEqual(1);
    expect(cut.length).toBeGreaterThanOrEqual(1);

    // while no agent ran, the copy of the snapshot's slot expired (as a day without one would)
    await query(pair.source.url, 'UPDATE steep_repl.init_slots SET expires_at = now() WHERE slot_name = $1', [pair.replicationName]);
    expect(await query(pair.source.url, 'SELECT steep_repl.expire_prepared_slot($1) AS outcome', [pair.replicationName])).toEqual([{ outcome: 'expired' }]);
    expect(await query(pair.source.url, 'SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1', [pair.replicationName])).toEqual([]);

    agent = await AgentProcess.start(pair.target.url);
    await waitSynchronized(pair.target, agent);
    await writer.stop();
    await waitCaughtUp(pair);
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
    // copied again from the snapshot's slot, still at the same point
    expect(agent.lines.find((l) => l.event === 'init.slot_copied')).toMatchObject({ slot_name: pair.replicationName });

    const after = await partsOf(pair);
    console.log(`after the resume: ${brief(after)}`);
    const byKey = new Map(after.map((p) => [partKey(p), p]));
    expect(after.every((p) => p.state === 'done')).toBe(true);
    for (const p of doneBefore) expect(byKey.get(partKey(p))).toMatchObject({ state: 'done', copies: 1 });
    for (const p of cut) expect(byKey.get(partKey(p))).toMatchObject({ state: 'done', copies: 2 });
    // the resumed run checked the files of the parts still to load, and loaded only those
    expect(agent.lines.find((l) => l.event === 'init.snapshot_files_checked')).toMatchObject({ parts: after.length - doneBefore.length });
    expect(agent.lines.filter((l) => l.event === 'init.part_copied').length).toBe(after.length - doneBefore.length);
    expect(agent.lines.filter((l) => ['agent.unhandled_rejection', 'init.failed', 'job.failed'].includes(l.event))).toEqual([]);
    await tearDown(pair);
  });

  it('a file damaged after the verification fails its part (rolled back, the file named); mended, the resume loads the rest and ends identical', async () => {
    const { pair, writer, id } = await setUp('apply_damaged', { compression: 'none' });
    const [{ output_dir: dir }] = await query(pair.source.url, 'SELECT output_dir FROM steep_repl.snapshots WHERE snapshot_id = $1', [id]);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    // the smallest part of the items or events table: loaded late, one worker taking the largest first
    const marks: Record<string, { find: string; to: string; left: string }> = {
      'Order "Items" é': { find: 'item 1', to: 'j', left: `SELECT count(*)::int AS n FROM "Sales ünit"."Order ""Items"" é" WHERE "select" LIKE 'jtem%'` },
      events: { find: 'eeeeeeeeee', to: 'f', left: "SELECT count(*)::int AS n FROM public.events WHERE payload LIKE '%f%'" },
    };
    const [victim] = manifest.tables
      .filter((t: any) => marks[t.table_name])
      .flatMap((t: any) => t.parts.map((p: any) => ({ ...p, mark: marks[t.table_name] })))
      .sort((a: any, b: any) => a.raw_bytes - b.raw_bytes);
    const file = path.join(dir, victim.file);
    const original = fs.readFileSync(file);
    // one worker, a little faster: every part passes through it before the damaged one
    let agent = await AgentProcess.start(pair.target.url, [], { STEEP_REPL_COPY_MAX_RATE: '1000000' });
    await startApply(pair.target, pair.source, id, { parallel: 1 });
    await waitMidLoad(pair, agent);
    expect((await partsOf(pair)).find((p) => p.leaf_name === victim.leaf_name && p.part_no === victim.part_no)?.state).toBe('pending');
    // a value COPY still takes: only the checksum can tell
    const damaged = Buffer.from(original);
    const at = damaged.indexOf(victim.mark.find);
    expect(at).toBeGreaterThan(0);
    damaged[at] = victim.mark.to.charCodeAt(0);
    fs.writeFileSync(file, damaged);

    const failed = await waitUntil('the damaged part to fail the apply', async () => {
      const s = await initStatus(pair.target);
      return s.state === 'failed' ? s : undefined;
    }, 60000);
    expect(failed.progress.error).toContain(`${file} is not the file the manifest lists (sha256 `);
    expect(failed.progress.error).toContain('its rows were rolled back');
    expect(await query(pair.target.url, victim.mark.left)).toEqual([{ n: 0 }]);
    const atFailure = await partsOf(pair);
    const doneBefore = atFailure.filter((p) => p.state === 'done');
    expect(doneBefore.length).toBeGreaterThan(1);

    fs.writeFileSync(file, original);
    await agent.stop();
    agent = await AgentProcess.start(pair.target.url);
    await query(pair.target.url, `SELECT steep_repl.start_init($1, $2, 'two-phase', '{"resume": true}')`, [pair.target.id, pair.source.id]);
    await waitSynchronized(pair.target, agent);
    await writer.stop();
    await waitCaughtUp(pair);
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
    const after = await partsOf(pair);
    for (const p of doneBefore) expect(after.find((a) => partKey(a) === partKey(p))).toMatchObject({ state: 'done', copies: 1 });
    expect(after.every((p) => p.state === 'done')).toBe(true);
    await tearDown(pair);
  });

  it('cancel mid-load removes what the apply made and leaves the snapshot usable: a second apply of it ends identical', async () => {
    const { pair, writer, id } = await setUp('apply_cancel');
    const [snapshot] = await query(pair.source.url, 'SELECT slot_name, publication, consistent_lsn::text AS lsn FROM steep_repl.snapshots WHERE snapshot_id = $1', [id]);
    let agent = await AgentProcess.start(pair.target.url, [], slowLoad);
    await startApply(pair.target, pair.source, id, { parallel: 2 });
    await waitMidLoad(pair, agent);
    expect(await query(pair.source.url, "SELECT slot_name, for_node, publication FROM steep_repl.init_slots WHERE purpose = 'two-phase'")).toEqual([
      { slot_name: pair.replicationName, for_node: pair.target.id, publication: snapshot.publication },
    ]);
    await query(pair.target.url, 'SELECT steep_repl.cancel_init($1)', [pair.target.id]);
    await waitUntil('cancelled', async () => (await initStatus(pair.target)).state === 'uninitialized', 30000);

    // the apply's own things are gone; the snapshot's slot (unconsumed) and publication stay
    expect(await query(pair.target.url, 'SELECT subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())')).toEqual([]);
    expect(await query(pair.target.url, 'SELECT count(*)::int AS n FROM public.accounts')).toEqual([{ n: 0 }]);
    expect(await query(pair.source.url, 'SELECT slot_name, confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE database = current_database()')).toEqual([
      { slot_name: snapshot.slot_name, lsn: snapshot.lsn },
    ]);
    expect((await query(pair.source.url, 'SELECT pubname FROM pg_publication')).map((r) => r.pubname)).toEqual([snapshot.publication]);
    expect(await query(pair.source.url, 'SELECT slot_name FROM steep_repl.init_slots')).toEqual([]);

    await agent.stop();
    agent = await AgentProcess.start(pair.target.url);
    await startApply(pair.target, pair.source, id);
    await waitSynchronized(pair.target, agent);
    await writer.stop();
    await waitCaughtUp(pair);
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
    expect((await partsOf(pair)).every((p) => p.state === 'done' && p.copies === 1)).toBe(true);
    await tearDown(pair);
  });
});
