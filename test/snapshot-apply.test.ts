// Two-phase apply end to end (issue 11): the source's agent generates a
// snapshot while a writer keeps writing, the writer goes on between
// generate and apply, and the target's agent applies it (init method
// two-phase) and catches up: identical content, on two targets one after
// the other from the same snapshot. Then every way a snapshot can be unfit
// is refused before anything changes: a damaged directory (a flipped byte,
// a cut-off file, a missing one, an extra one, a manifest edited by hand,
// entries with ../ or an absolute path, a symbolic link, data/ linked
// elsewhere) and an expired or deleted snapshot, each with what to do.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { shellWord } from '../lib/format';
import { manifestChecksum, manifestText } from '../lib/snapshot/manifest';
import { clusterA, clusterB, query } from './support/clusters';
import { contentHashes, createInitPair, InitPair, initStatus, sourceWrites, userSchemaSql, waitCaughtUp } from './support/init-pair';
import { createNodeDb, dropReplicationObjects, NodeDb, registerPair } from './support/node-pair';
import { AgentProcess, stopAllAgents } from './support/processes';
import { generateSnapshot, startApply, waitSynchronized } from './support/snapshot-apply';
import { waitUntil } from './support/wait';
import { startWriter, Writer } from './support/writer';

jest.setTimeout(180000);

const rows = 20000;

// What an apply could have changed, on both sides.
async function lookAround(pair: { source: NodeDb }, target: NodeDb) {
  const [{ n }] = await query(
    target.url,
    `SELECT (SELECT count(*) FROM public.accounts) + (SELECT count(*) FROM public.docs) + (SELECT count(*) FROM public.events)
            + (SELECT count(*) FROM "Sales ünit"."Order ""Items"" é") + (SELECT count(*) FROM public.slow) AS n`,
  );
  return {
    target_rows: Number(n),
    subscriptions: (await query(target.url, 'SELECT subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY 1')).map((r) => r.subname),
    target_slots: (await query(target.url, 'SELECT slot_name FROM pg_replication_slots WHERE database = current_database() ORDER BY 1')).map((r) => r.slot_name),
    // the streaming targets' slots move on; the snapshots' must not
    slots: (await query(pair.source.url, 'SELECT slot_name FROM pg_replication_slots WHERE database = current_database() ORDER BY 1')).map((r) => r.slot_name),
    snapshot_slots: await query(
      pair.source.url,
      'SELECT s.slot_name, s.confirmed_flush_lsn::text AS lsn FROM pg_replication_slots s JOIN steep_repl.snapshots n ON n.slot_name = s.slot_name ORDER BY 1',
    ),
    publications: (await query(pair.source.url, 'SELECT pubname FROM pg_publication ORDER BY 1')).map((r) => r.pubname),
    init_slots: await query(pair.source.url, 'SELECT slot_name FROM steep_repl.init_slots ORDER BY 1'),
  };
}

describe('two-phase apply', () => {
  let pair: InitPair;
  let second: NodeDb;
  let third: NodeDb;
  const agents: AgentProcess[] = [];
  const writers: Writer[] = [];
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'steep-snapshot-apply-'));
  let goodDir: string;
  let goodId: string;

  beforeAll(async () => {
    // node ids of this file's own: slot names are the server's, shared by every test file's databases
    pair = await createInitPair({ tag: 'snap_apply', sourceCluster: clusterA(), targetCluster: clusterB(), rows, sourceId: 'Sourçe "apply"', targetId: 'Tärget "one"' });
    // more targets of the same source, with the same schema and no rows
    second = await createNodeDb(clusterB(), 'snap_apply_tgt2', 'Tärget "two"', { installer: 'cli' });
    third = await createNodeDb(clusterB(), 'snap_apply_tgt3', 'Tärget three', { installer: 'cli' });
    for (const t of [second, third]) {
      await registerPair(pair.source, t);
      await query(t.url, userSchemaSql);
    }
    // the source's agent generates the snapshots (stopped by stopAllAgents)
    await AgentProcess.start(pair.source.url);
  });
  afterAll(async () => {
    await Promise.all(writers.map((w) => w.stop().catch(() => undefined)));
    await stopAllAgents();
    await pair?.drop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('generated under writes, applied to two targets one after the other with writes between: each identical, the snapshot untouched', async () => {
    const writer = startWriter(pair.source.url, sourceWrites(rows), { pauseMs: 5 });
    writers.push(writer);
    await waitUntil('writes before the generate', async () => writer.counts.transactions > 20);
    goodDir = path.join(root, 'good');
    goodId = await generateSnapshot(pair.source, goodDir, { parallel: 2, compression: 'gzip', split_tables_larger_than: '1MB', max_parts: 4 });
    const [snapshotBefore] = await query(pair.source.url, 'SELECT slot_name, publication, consistent_lsn::text AS lsn FROM steep_repl.snapshots WHERE snapshot_id = $1', [goodId]);
    // writes between generate and apply
    const atReady = writer.counts.transactions;
    await waitUntil('writes after the generate', async () => writer.counts.transactions > atReady + 20);

    // a slot of the second pair's name left by something before: no row, no subscription, so dropped
    const [{ name: secondName }] = await query(pair.source.url, 'SELECT steep_repl.replication_name($1, $2) AS name', [pair.source.id, second.id]);
    await query(pair.source.url, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [secondName]);

    for (const target of [pair.target, second]) {
      const agent = await AgentProcess.start(target.url);
      agents.push(agent);
      await startApply(target, pair.source, goodId, { parallel: 3 });
      await waitSynchronized(target, agent);
      const parts = await query(target.url, 'SELECT state, copies FROM steep_repl.init_parts');
      expect(parts.length).toBeGreaterThan(5);
      expect(parts.every((p) => p.state === 'done' && p.copies === 1)).toBe(true);
      expect(agent.lines.find((l) => l.event === 'init.publication_switched')).toMatchObject({ from: snapshotBefore.publication });
      if (target === second) expect(agent.lines.find((l) => l.event === 'init.stale_slot_dropped')).toMatchObject({ slot_name: secondName });
      // the load workers' origins went with them (each would hold one of the server's origin states)
      const workerOrigins = "SELECT roname FROM pg_replication_origin WHERE roname LIKE 'steep_repl_local_' || (SELECT oid FROM pg_database WHERE datname = current_database()) || '_%'";
      expect(await query(target.url, workerOrigins)).toEqual([]);
    }
    await writer.stop();
    expect(writer.counts.transactions).toBeGreaterThan(atReady + 20);
    const onSource = await contentHashes(pair.source.url);
    for (const target of [pair.target, second]) {
      await waitCaughtUp({ ...pair, target }, (await query(target.url, 'SELECT subslotname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())'))[0].subslotname);
      expect(await contentHashes(target.url)).toEqual(onSource);
      // the snapshot's sequences, then the source's live values
      expect(await query(target.url, "SELECT last_value::int AS v FROM pg_sequences WHERE sequencename = 'ticket_seq'")).toEqual([{ v: 4242 }]);
    }
    // The snapshot's own slot was copied, never consumed; its publication stays; no apply in flight.
    const [slot] = await query(pair.source.url, 'SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [snapshotBefore.slot_name]);
    expect(slot).toEqual({ lsn: snapshotBefore.lsn });
    expect(await query(pair.source.url, 'SELECT 1 AS one FROM pg_publication WHERE pubname = $1', [snapshotBefore.publication])).toEqual([{ one: 1 }]);
    expect(await query(pair.source.url, "SELECT slot_name FROM steep_repl.init_slots WHERE purpose = 'two-phase'")).toEqual([]);
    const [{ status }] = await query(pair.source.url, 'SELECT steep_repl.snapshot_status($1) AS status', [goodId]);
    expect(status.state).toBe('ready');
    expect(status.applies).toEqual([]);
    // their subscriptions (and replication origins) are not needed further on: the servers are shared
    for (const a of agents) await a.stop();
    agents.length = 0;
    await dropReplicationObjects([pair.target, second]);
  });

  // A copy of the good directory, damaged by `harm`, applied to the third
  // target: refused, naming what is wrong, and nothing changed anywhere.
  // (the recorded error carries the hint in parentheses)
  const refused = async (name: string, harm: (dir: string) => void): Promise<string> => {
    const dir = path.join(root, name);
    fs.cpSync(goodDir, dir, { recursive: true });
    harm(dir);
    const before = await lookAround(pair, third);
    expect(before.target_rows).toBe(0);
    await startApply(third, pair.source, dir);
    const failed = await waitUntil('refused', async () => {
      const s = await initStatus(third);
      if (s.state === 'synchronized') throw new Error(`${name}: applied, not refused`);
      return s.state === 'failed' ? s : undefined;
    });
    expect(await lookAround(pair, third)).toEqual(before);
    await query(third.url, 'SELECT steep_repl.cancel_init($1)', [third.id]);
    await waitUntil('cancelled', async () => (await initStatus(third)).state === 'uninitialized');
    expect(await lookAround(pair, third)).toEqual(before);
    return failed.progress.error;
  };
  const manifestOf = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const largestPart = (dir: string) => {
    const parts = manifestOf(dir).tables.flatMap((t: any) => t.parts);
    return parts.sort((a: any, b: any) => b.stored_bytes - a.stored_bytes)[0];
  };
  // the manifest rewritten with a valid checksum, so only the change itself can be caught
  const rewrite = (dir: string, edit: (m: any) => void) => {
    const m = manifestOf(dir);
    edit(m);
    const { manifest_checksum: _old, ...body } = m;
    fs.writeFileSync(path.join(dir, 'manifest.json'), manifestText(body));
    expect(manifestOf(dir).manifest_checksum).toBe(manifestChecksum(manifestOf(dir)));
  };

  it('refuses a damaged directory with the list of what is wrong, and changes nothing on either node', async () => {
    const agent = await AgentProcess.start(third.url);
    agents.push(agent);
    const part = largestPart(goodDir);

    const flipped = await refused('flipped', (dir) => {
      const file = path.join(dir, part.file);
      const bytes = fs.readFileSync(file);
      bytes[Math.floor(bytes.length / 2)] ^= 0xff;
      fs.writeFileSync(file, bytes);
    });
    expect(flipped).toContain(`cannot be applied: 1 problem: (1) ${path.join(root, 'flipped', part.file)} has sha256`);
    expect(flipped).toContain('(its content changed)');

    const truncated = await refused('truncated', (dir) => fs.truncateSync(path.join(dir, part.file), Math.floor(part.stored_bytes / 2)));
    expect(truncated).toContain(`${path.join(root, 'truncated', part.file)} is ${Math.floor(part.stored_bytes / 2)} bytes, the manifest says ${part.stored_bytes} (cut off)`);

    const missing = await refused('missing', (dir) => fs.rmSync(path.join(dir, part.file)));
    expect(missing).toContain(`${path.join(root, 'missing', part.file)} is missing`);

    const extra = await refused('extra', (dir) => {
      fs.writeFileSync(path.join(dir, 'data', '99999-extra.copy.gz'), 'x');
      fs.writeFileSync(path.join(dir, 'notes.txt'), 'x');
    });
    expect(extra).toContain('2 problems');
    expect(extra).toContain(`${path.join(root, 'extra', 'data', '99999-extra.copy.gz')} is not in the manifest (an extra file)`);
    expect(extra).toContain(`${path.join(root, 'extra', 'notes.txt')} is not in the manifest (an extra file)`);

    const edited = await refused('edited', (dir) => {
      const text = fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8');
      fs.writeFileSync(path.join(dir, 'manifest.json'), text.replace(`"rows": ${part.rows},`, `"rows": ${part.rows + 1},`));
    });
    expect(edited).toContain('manifest.json does not match its own checksum (manifest_checksum)');

    const format = await refused('format', (dir) => rewrite(dir, (m) => (m.format_version = 2)));
    expect(format).toContain('manifest.json has format_version 2; this steep-repl reads format 1');

    // The checksum is made valid again: the path check alone refuses them, before any path is built.
    for (const [name, evil] of [
      ['dotdot', '../x'],
      ['absolute', '/etc/hostname'],
    ]) {
      const got = await refused(name, (dir) =>
        rewrite(dir, (m) => {
          const p = m.tables.flatMap((t: any) => t.parts).find((p: any) => p.file === part.file);
          p.file = name === 'dotdot' ? `data/../../${path.basename(goodDir)}/${part.file}` : evil;
        }),
      );
      expect(got).toContain(`for ${part.leaf_schema === 'public' ? 'public.' : ''}`);
      expect(got).toMatch(/: not a file name inside the snapshot directory \(refused, nothing read\)/);
      // the file the entry named is no longer listed: it shows as extra, not as read
      expect(got).toContain(`${path.join(root, name, part.file)} is not in the manifest (an extra file)`);
    }

    const linked = await refused('symlink', (dir) => {
      const file = path.join(dir, part.file);
      fs.renameSync(file, path.join(dir, 'data', 'moved'));
      fs.symlinkSync(path.join(dir, 'data', 'moved'), file);
      // moved is itself an extra file; the link points inside the directory and is refused all the same
    });
    expect(linked).toContain(`${path.join(root, 'symlink', part.file)} is a symbolic link (refused, even one that points inside the directory)`);
    expect(linked).toContain('copy it again, whole');

    // data/ itself a link to a directory outside: no file is read through it
    const linkedData = await refused('linked-data', (dir) => {
      fs.renameSync(path.join(dir, 'data'), `${dir}-data-elsewhere`);
      fs.symlinkSync(`${dir}-data-elsewhere`, path.join(dir, 'data'));
    });
    expect(linkedData).toContain(`cannot be applied: 1 problem: (1) ${path.join(root, 'linked-data', 'data')} is a symbolic link (refused`);
    expect((await initStatus(third)).state).toBe('uninitialized');
  });

  it('refuses an expired and a deleted snapshot, saying to generate a new one and how', async () => {
    const agent = agents.find((a) => a.running)!;
    expect(agent).toBeDefined();
    const expireId = await generateSnapshot(pair.source, path.join(root, 'to-expire'), { compression: 'none' });
    await query(pair.source.url, "UPDATE steep_repl.snapshots SET expires_at = created_at + interval '1 microsecond' WHERE snapshot_id = $1", [expireId]);
    expect(await query(pair.source.url, 'SELECT steep_repl.expire_snapshot($1) AS outcome', [expireId])).toEqual([{ outcome: 'expired' }]);
    const deleteId = await generateSnapshot(pair.source, path.join(root, 'to-delete'), { compression: 'none' });
    await query(pair.source.url, 'SELECT steep_repl.delete_snapshot($1)', [deleteId]);

    for (const [id, word] of [
      [expireId, 'expired at'],
      [deleteId, 'was deleted'],
    ]) {
      const before = await lookAround(pair, third);
      await startApply(third, pair.source, id);
      const failed = await waitUntil('refused', async () => {
        const s = await initStatus(third);
        return s.state === 'failed' ? s : undefined;
      });
      expect(failed.progress.error).toContain(`snapshot ${id} ${word}`);
      expect(failed.progress.error).toContain('its slot was dropped');
      expect(failed.progress.error).toContain(`generate a new snapshot on the source: steep-repl snapshot generate ${shellWord(pair.source.id)} --output <an empty directory>`);
      expect(await lookAround(pair, third)).toEqual(before);
      await query(third.url, 'SELECT steep_repl.cancel_init($1)', [third.id]);
      await waitUntil('cancelled', async () => (await initStatus(third)).state === 'uninitialized');
    }
  });
});
