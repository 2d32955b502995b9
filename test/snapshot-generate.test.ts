// snapshot generate on the source (issue 11), real servers, the source's own
// agent writing the files:
//  - under a writer, the files hold exactly what the snapshot holds: a
//    witness session imports the same exported snapshot while the generate
//    runs (SET TRANSACTION SNAPSHOT, as every writer does) and hashes every
//    table on it; the files, loaded into an empty database through their
//    own schema.sql, hash the same, while the source has moved on. That the
//    snapshot is the slot's consistent point is PostgreSQL's guarantee
//    (CREATE_REPLICATION_SLOT ... SNAPSHOT 'export'); the apply tests prove
//    the end-to-end equality after streaming;
//  - the manifest: its checksum, every file's size and sha256, totals,
//    binary and text formats; progress and events without node_id;
//  - each compression round-trips; bad input is refused and changes nothing;
//  - the agent SIGKILLed mid-generate resumes exactly (the holder keeps the
//    snapshot; done parts written once, the cut part twice); the holder
//    alone killed changes nothing (the writers hold the snapshot); agent and
//    holder killed: failed, no slot, no publication, no files;
//  - delete (ready and generating), expiry, the slot watch.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Client, escapeIdentifier } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { decompressor } from '../lib/snapshot/compression';
import { Compression, Manifest, manifestChecksum } from '../lib/snapshot/manifest';
import { clusterA, createDatabase, dropDatabase, query, withClient } from './support/clusters';
import { contentHashes, dropReplicationObjects, sourceDataSql, sourceWrites, tableHash, userSchemaSql, userTables } from './support/init-pair';
import { createNodeDb, NodeDb, registerIn } from './support/node-pair';
import { ChannelRecorder, pgError } from './support/notifications';
import { AgentProcess, processRunning, stopAllAgents } from './support/processes';
import { waitUntil } from './support/wait';
import { startWriter, Writer } from './support/writer';

jest.setTimeout(180000);

// A table of a user-defined type: its parts travel as text, the others binary.
const extraSql = `
  CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
  CREATE TABLE public.moods (id int PRIMARY KEY, m public.mood NOT NULL, at timestamptz NOT NULL DEFAULT '2026-01-01');
  INSERT INTO public.moods SELECT g, (ARRAY['sad', 'ok', 'happy']::public.mood[])[1 + g % 3] FROM generate_series(1, 3000) g;
`;
const tables = [...userTables, 'public.moods'];
const rows = 30000;
// Bytes per second per writer while something is to happen mid-generate.
const slow = { STEEP_REPL_COPY_MAX_RATE: '200000' };
const splitOptions = { parallel: 2, split_tables_larger_than: '1MB', max_parts: 4 };

async function createSource(tag: string): Promise<NodeDb> {
  const db = await createNodeDb(clusterA(), `snapgen_${tag}`, `Sŏurce "${tag}"`, { installer: 'cli' });
  await registerIn(db, db);
  await query(db.url, userSchemaSql + extraSql);
  await query(db.url, sourceDataSql(rows));
  await query(db.url, "INSERT INTO public.slow SELECT g, 'slow ' || g FROM generate_series(1, 50) g");
  await query(db.url, 'ANALYZE');
  return db;
}

interface Status {
  snapshot_id: string;
  state: string;
  error: string | null;
  hint: string | null;
  snapshot_name: string | null;
  slot_name: string;
  publication: string;
  output_dir: string;
  parts_total: number;
  parts_done: number;
  overall_percent: number;
  slot: { exists: boolean };
  [key: string]: any;
}

const status = async (db: NodeDb, id: string): Promise<Status> =>
  (await query(db.url, 'SELECT steep_repl.snapshot_status($1) AS s', [id]))[0].s;

async function generate(db: NodeDb, dir: string, options: Record<string, unknown> = {}): Promise<string> {
  const [{ s }] = await query(db.url, 'SELECT steep_repl.generate_snapshot($1, $2) AS s', [dir, JSON.stringify(options)]);
  return s.snapshot_id;
}

async function waitState(db: NodeDb, id: string, states: string[], agent?: AgentProcess, timeoutMs = 60000): Promise<Status> {
  return waitUntil(
    `snapshot ${id} ${states.join(' or ')}`,
    async () => {
      const s = await status(db, id);
      if (s.state === 'failed' && !states.includes('failed')) throw new Error(`generate failed: ${s.error}\n${agent?.raw.slice(-30).join('\n') ?? ''}`);
      return states.includes(s.state) ? s : undefined;
    },
    timeoutMs,
  );
}

interface PartRow {
  leaf_name: string;
  part_no: number;
  state: string;
  writes: number;
  rows_written: number;
  bytes_written: number;
  rows_estimate: number;
  file_name: string;
}
const partKey = (p: PartRow) => `${p.leaf_name}#${p.part_no}`;
const partsOf = (db: NodeDb, id: string) =>
  query<PartRow>(
    db.url,
    `SELECT leaf_name, part_no, state, writes, rows_written::float8 AS rows_written, bytes_written::float8 AS bytes_written,
            rows_estimate::float8 AS rows_estimate, file_name
     FROM steep_repl.snapshot_parts WHERE snapshot_id = $1 ORDER BY leaf_schema, leaf_name, part_no`,
    [id],
  );

// A part written and one being written (if halfway: with bytes through to
// its file already; rows are no measure here, the server has sent them all
// into the socket long before a throttled writer took them).
async function waitMidWrite(db: NodeDb, id: string, agent: AgentProcess, halfway = false): Promise<PartRow[]> {
  return waitUntil(
    'a part written and one being written',
    async () => {
      const s = await status(db, id);
      if (s.state !== 'generating') throw new Error(`snapshot is ${s.state}: ${s.error}\n${agent.raw.slice(-30).join('\n')}`);
      const parts = await partsOf(db, id);
      const writing = parts.some((p) => p.state === 'writing' && (!halfway || p.bytes_written > 0));
      return parts.some((p) => p.state === 'done') && writing ? parts : undefined;
    },
    60000,
    100,
  );
}

// The witness: a session of its own on the generate's exported snapshot,
// hashing every table as the snapshot has it.
async function witnessHashes(db: NodeDb, snapshotName: string): Promise<Record<string, string>> {
  return withClient(db.url, async (client) => {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await client.query(`SET TRANSACTION SNAPSHOT '${snapshotName}'`);
    const out: Record<string, string> = {};
    for (const t of tables) out[t] = await tableHash(client, t);
    await client.query('ROLLBACK');
    return out;
  });
}

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

// Reads the manifest and checks it against the directory: its own
// checksum, and every file it lists is there with its size and sha256.
function checkedManifest(dir: string): Manifest {
  const manifest: Manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  expect(manifestChecksum(manifest)).toBe(manifest.manifest_checksum);
  const listed = new Set<string>();
  for (const f of manifest.files) {
    listed.add(f.file);
    expect({ file: f.file, bytes: fs.statSync(path.join(dir, f.file)).size, sha256: sha256(path.join(dir, f.file)) }).toEqual(f);
  }
  for (const t of manifest.tables) {
    for (const p of t.parts) {
      listed.add(p.file);
      const file = path.join(dir, p.file);
      expect({ file: p.file, bytes: fs.statSync(file).size, sha256: sha256(file) }).toEqual({ file: p.file, bytes: p.stored_bytes, sha256: p.sha256 });
    }
    expect(t.rows).toBe(t.parts.reduce((n, p) => n + p.rows, 0));
  }
  // nothing in the directory the manifest does not list (no .tmp left)
  const present = [...fs.readdirSync(dir).filter((f) => f !== 'data' && f !== 'manifest.json'), ...fs.readdirSync(path.join(dir, 'data')).map((f) => `data/${f}`)];
  expect(present.sort()).toEqual([...listed].sort());
  expect(manifest.totals.parts).toBe(manifest.tables.reduce((n, t) => n + t.parts.length, 0));
  return manifest;
}

// The files loaded into an empty database through their own schema.sql;
// returns its content hashes. Each part is decompressed and copied as the
// manifest says (columns, format).
async function loadFiles(dir: string, manifest: Manifest): Promise<Record<string, string>> {
  const scratch = await createDatabase(clusterA(), 'snapgen_load');
  scratches.push(scratch.name);
  await withClient(scratch.url, async (client) => {
    await client.query(fs.readFileSync(path.join(dir, 'schema.sql'), 'utf8'));
    for (const t of manifest.tables) {
      const cols = t.columns.map((c) => escapeIdentifier(c.name)).join(', ');
      for (const p of t.parts) {
        const into = client.query(
          copyFrom(`COPY ${escapeIdentifier(t.schema_name)}.${escapeIdentifier(t.table_name)} (${cols}) FROM STDIN${t.format === 'binary' ? ' (FORMAT binary)' : ''}`),
        );
        await pipeline(fs.createReadStream(path.join(dir, p.file)), decompressor(manifest.compression), into);
        expect(into.rowCount).toBe(p.rows);
      }
    }
  });
  return contentHashes(scratch.url, tables);
}

const slotsAndPublications = async (db: NodeDb) => ({
  slots: (await query(db.url, 'SELECT slot_name FROM pg_replication_slots WHERE database = current_database()')).map((r) => r.slot_name),
  publications: (await query(db.url, 'SELECT pubname FROM pg_publication')).map((r) => r.pubname),
});

const scratches: string[] = [];
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'steep-snapgen-'));
const dirOf = (name: string) => path.join(root, name);

describe('snapshot generate', () => {
  const sources: NodeDb[] = [];
  const writers: Writer[] = [];
  const holderPids = new Set<number>();
  const recorders: ChannelRecorder[] = [];
  const startedAt = Date.now();
  let gen: NodeDb;
  let faults: NodeDb;

  const holderOf = async (agent: AgentProcess, id: string) => {
    const exported = await agent.waitFor((l) => l.event === 'snapshot.exported' && l.snapshot_id === id, 30000);
    const pid = Number(exported.holder_pid);
    holderPids.add(pid);
    return pid;
  };

  afterEach(async () => {
    await stopAllAgents();
    await Promise.all(writers.map((w) => w.stop().catch(() => undefined)));
  });
  beforeAll(async () => {
    [gen, faults] = await Promise.all([createSource('gen'), createSource('faults')]);
    sources.push(gen, faults);
  });
  afterAll(async () => {
    for (const r of recorders) await r.close().catch(() => undefined);
    await Promise.all(writers.map((w) => w.stop().catch(() => undefined)));
    await stopAllAgents();
    for (const pid of holderPids) if (processRunning(pid)) process.kill(pid, 'SIGKILL');
    for (const db of sources) {
      await dropReplicationObjects([db]).catch(() => undefined);
      await dropDatabase(db.cluster, db.name).catch(() => undefined);
    }
    for (const name of scratches) await dropDatabase(clusterA(), name).catch(() => undefined);
    fs.rmSync(root, { recursive: true, force: true });
    console.log(`snapshot-generate: ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
  });

  it('under a writer, writes exactly what the exported snapshot holds: manifest checked, files loaded through schema.sql, progress and events without node_id', async () => {
    const recorder = await ChannelRecorder.listen(gen.url, ['steep_repl_progress', 'steep_repl_events']);
    recorders.push(recorder);
    const agent = await AgentProcess.start(gen.url, [], { STEEP_REPL_COPY_MAX_RATE: '1500000' });
    const writer = startWriter(gen.url, sourceWrites(rows), { pauseMs: 5 });
    writers.push(writer);
    await waitUntil('the writer to commit', () => writer.counts.transactions > 5);
    const dir = dirOf('zstd');
    const id = await generate(gen, dir, splitOptions);
    expect(id).toMatch(/^snap_\d{8}_\d{6}_[0-9a-f]{4}$/);
    const holder = await holderOf(agent, id);
    const during = await waitUntil('the exported snapshot recorded', async () => (await status(gen, id)).snapshot_name);
    const witness = await witnessHashes(gen, during!);
    const ready = await waitState(gen, id, ['ready'], agent);
    await writer.stop();
    expect(writer.counts.transactions).toBeGreaterThan(20);

    expect(ready).toMatchObject({ state: 'ready', snapshot_name: null, overall_percent: 100, error: null, slot: { exists: true } });
    expect(ready.parts_done).toBe(ready.parts_total);
    const manifest = checkedManifest(dir);
    expect(manifest).toMatchObject({
      format_version: 1,
      snapshot_id: id,
      source: { node_id: gen.id, dbname: gen.name },
      slot_name: `steep_${id}`,
      publication: `steep_${id}`,
      consistent_lsn: ready.consistent_lsn,
      compression: 'zstd',
      workers: 2,
      manifest_checksum: ready.manifest_checksum,
    });
    expect(manifest.source.system_identifier).toMatch(/^\d+$/);
    const byName = new Map(manifest.tables.map((t) => [`${t.schema_name}.${t.table_name}`, t]));
    expect([...byName.keys()].sort()).toEqual(['Sales ünit.Order "Items" é', 'public.accounts', 'public.docs', 'public.events', 'public.moods', 'public.slow'].sort());
    expect(byName.get('public.moods')!.format).toBe('text');
    expect(byName.get('public.accounts')!.format).toBe('binary');
    const accountParts = byName.get('public.accounts')!.parts;
    expect(accountParts.length).toBeGreaterThanOrEqual(2);
    expect(accountParts.every((p) => p.split === 'key')).toBe(true);
    expect(byName.get('public.events')!.parts.map((p) => p.leaf_name).sort()).toEqual(['events_1', 'events_2', 'events_other']);
    const fingerprints = await query(gen.url, 'SELECT schema_name, table_name, fingerprint FROM steep_repl.table_fingerprints()');
    for (const t of manifest.tables) {
      expect(t.fingerprint).toBe(fingerprints.find((f) => f.schema_name === t.schema_name && f.table_name === t.table_name)?.fingerprint);
    }
    const sequences = JSON.parse(fs.readFileSync(path.join(dir, 'sequences.json'), 'utf8'));
    expect(sequences.sequences).toContainEqual({ schema_name: 'public', sequence_name: 'ticket_seq', last_value: '4242', is_called: true });

    // exactly the snapshot: what the witness saw, not what the source has now
    const loaded = await loadFiles(dir, manifest);
    expect(loaded).toEqual(witness);
    const now = await contentHashes(gen.url, tables);
    expect(now['public.accounts']).not.toBe(witness['public.accounts']);

    await waitUntil('the holder to exit once ready', () => !processRunning(holder), 10000);
    const [{ active }] = await query(gen.url, 'SELECT active FROM pg_replication_slots WHERE slot_name = $1', [`steep_${id}`]);
    expect(active).toBe(false);

    const sender = new Client({ connectionString: gen.url });
    await sender.connect();
    await recorder.fence(sender);
    await sender.end();
    const received = recorder.take();
    const progress = received.filter((r) => r.channel === 'steep_repl_progress' && r.payload.snapshot_id === id).map((r) => r.payload);
    expect(progress.length).toBeGreaterThan(2);
    for (const p of progress) {
      expect(p).not.toHaveProperty('node_id');
      expect(p).toMatchObject({ kind: 'snapshot', source_node_id: gen.id });
    }
    expect(progress.some((p) => p.state === 'generating' && p.parts_done > 0 && p.parts_done < p.parts_total && p.workers_active > 0)).toBe(true);
    expect(progress.at(-1)).toMatchObject({ state: 'ready', overall_percent: 100 });
    expect(received.every((r) => Buffer.byteLength(JSON.stringify(r.payload)) < 8000)).toBe(true);
    const events = received.filter((r) => r.channel === 'steep_repl_events' && r.payload.details?.snapshot_id === id).map((r) => r.payload.event);
    expect(events[0]).toBe('snapshot.generate_started');
    expect(events).toContain('snapshot.parts_planned');
    expect(events.filter((e: string) => e === 'snapshot.part_written').length).toBe(ready.parts_total);
    expect(events.at(-1)).toBe('snapshot.generated');

    const [overview] = await query(gen.url, 'SELECT * FROM steep_repl.snapshot_overview WHERE snapshot_id = $1', [id]);
    expect(overview).toMatchObject({ state: 'ready', compression: 'zstd', parts: ready.parts_total, slot_exists: true, applies_in_flight: 0 });
    expect(Number(overview.stored_bytes)).toBe(manifest.totals.stored_bytes);
    expect(Number(overview.rows)).toBe(manifest.totals.rows);
    expect(agent.lines.filter((l) => ['agent.unhandled_rejection', 'job.failed', 'snapshot.generate_failed'].includes(l.event))).toEqual([]);
    await agent.stop();
  });

  it('round-trips every compression: none, gzip, lz4 (zstd above)', async () => {
    const agent = await AgentProcess.start(gen.url);
    const expected = await contentHashes(gen.url, tables);
    for (const compression of ['none', 'gzip', 'lz4'] as Compression[]) {
      const dir = dirOf(compression);
      const id = await generate(gen, dir, { compression, parallel: 3 });
      await waitState(gen, id, ['ready'], agent);
      const manifest = checkedManifest(dir);
      expect(manifest.compression).toBe(compression);
      const ext = { none: '.copy', gzip: '.copy.gz', zstd: '.copy.zst', lz4: '.copy.lz4' }[compression];
      for (const t of manifest.tables) for (const p of t.parts) expect(p.file.endsWith(ext)).toBe(true);
      if (compression === 'none') for (const t of manifest.tables) expect(t.stored_bytes).toBe(t.raw_bytes);
      else expect(manifest.totals.stored_bytes).toBeLessThan(manifest.totals.raw_bytes);
      expect(await loadFiles(dir, manifest)).toEqual(expected);
    }
    await agent.stop();
  });

  it('refuses bad input and changes nothing; a directory it cannot use fails the snapshot before any slot', async () => {
    const before = await query(gen.url, 'SELECT count(*)::int AS n FROM steep_repl.snapshots');
    const jobsBefore = await query(gen.url, "SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE task_identifier = 'snapshot_generate'");
    const objectsBefore = await slotsAndPublications(gen);
    const refused = async (dir: string, options: Record<string, unknown>, message: RegExp) => {
      const err = await pgError(query(gen.url, 'SELECT steep_repl.generate_snapshot($1, $2)', [dir, JSON.stringify(options)]));
      expect(err.code).toBe('SR004');
      expect(err.message).toMatch(message);
    };
    await refused('relative/dir', {}, /must be an absolute path, got 'relative\/dir'/);
    await refused(dirOf('x'), { paralel: 2 }, /unknown snapshot option 'paralel'/);
    await refused(dirOf('x'), { parallel: 0 }, /option parallel must be a whole number from 1 to 16, got 0: out of range/);
    await refused(dirOf('x'), { parallel: 17 }, /option parallel must be a whole number from 1 to 16, got 17: out of range/);
    await refused(dirOf('x'), { compression: 'bz2' }, /option compression must be none, gzip, zstd, lz4, got "bz2"/);
    await refused(dirOf('x'), { expires: '0' }, /option expires must be from 60 to 31536000 seconds, got "0": out of range/);
    await refused(dirOf('x'), { max_parts: 1025 }, /option max_parts must be a whole number from 1 to 1024/);
    await refused(dirOf('x'), { split_tables_larger_than: '1kB' }, /option split_tables_larger_than must be from 1048576/);
    await refused(`${dirOf('x')}/../y`, {}, /without \. or \.\. parts/);
    const live = await pgError(query(gen.url, 'SELECT steep_repl.generate_snapshot($1)', [`${dirOf('zstd')}/`]));
    expect(live.code).toBe('SR006');
    expect(live.message).toMatch(/already uses directory/);
    expect(await query(gen.url, 'SELECT count(*)::int AS n FROM steep_repl.snapshots')).toEqual(before);
    expect(await query(gen.url, "SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE task_identifier = 'snapshot_generate'")).toEqual(jobsBefore);
    expect(await slotsAndPublications(gen)).toEqual(objectsBefore);

    // accepted by SQL, refused by the agent on its machine: nothing of the user's is touched
    const agent = await AgentProcess.start(gen.url);
    const full = dirOf('not-empty');
    fs.mkdirSync(full);
    fs.writeFileSync(path.join(full, 'manifest.json'), 'mine');
    const blocker = dirOf('a-file');
    fs.writeFileSync(blocker, 'not a directory');
    for (const [dir, message] of [
      [full, /is not empty \(manifest\.json\): a snapshot is never written over other files/],
      [path.join(blocker, 'sub'), /cannot be read \(ENOTDIR\)/],
      [blocker, /exists and is not a directory/],
    ] as const) {
      const id = await generate(gen, dir);
      const failed = await waitState(gen, id, ['failed'], agent);
      expect(failed.error).toMatch(message);
      expect(failed.hint).toBeTruthy();
      expect(failed.consistent_lsn).toBeNull();
      expect(await slotsAndPublications(gen)).toEqual(objectsBefore);
    }
    expect(fs.readdirSync(full)).toEqual(['manifest.json']);
    expect(fs.readFileSync(path.join(full, 'manifest.json'), 'utf8')).toBe('mine');
    expect(fs.readFileSync(blocker, 'utf8')).toBe('not a directory');
    await agent.stop();
  });

  it('agent SIGKILLed mid-generate: the holder keeps the snapshot, the next agent keeps the done parts and writes the cut one again; exact', async () => {
    let agent = await AgentProcess.start(faults.url, [], slow);
    const writer = startWriter(faults.url, sourceWrites(rows), { pauseMs: 5 });
    writers.push(writer);
    const dir = dirOf('resume');
    const id = await generate(faults, dir, splitOptions);
    const holder = await holderOf(agent, id);
    const witness = await witnessHashes(faults, (await waitUntil('the snapshot recorded', async () => (await status(faults, id)).snapshot_name))!);
    await waitMidWrite(faults, id, agent, true);
    await agent.stop('SIGKILL');
    // read once the agent is dead: a part seen writing just before may have finished before the kill
    const atKill = await partsOf(faults, id);
    const cut = atKill.filter((p) => p.state === 'writing');
    const doneBefore = atKill.filter((p) => p.state === 'done');
    expect(cut.length).toBeGreaterThan(0);
    console.log(`at the kill: ${atKill.map((p) => `${partKey(p)} ${p.state}`).join(', ')}`);
    expect(processRunning(holder)).toBe(true);
    // a part cut mid-write left its .tmp; one killed between its rename and its done mark, its file
    expect(cut.some((p) => fs.existsSync(path.join(dir, `${p.file_name}.tmp`)) || fs.existsSync(path.join(dir, p.file_name)))).toBe(true);

    agent = await AgentProcess.start(faults.url);
    const ready = await waitState(faults, id, ['ready'], agent);
    await writer.stop();
    const after = await partsOf(faults, id);
    const byKey = new Map(after.map((p) => [partKey(p), p]));
    for (const p of doneBefore) expect(byKey.get(partKey(p))).toMatchObject({ state: 'done', writes: 1 });
    for (const p of cut) expect(byKey.get(partKey(p))).toMatchObject({ state: 'done', writes: 2 });
    expect(agent.lines.find((l) => l.event === 'snapshot.resumed')).toMatchObject({ parts_done: doneBefore.length });
    const manifest = checkedManifest(dir);
    expect(manifest.consistent_lsn).toBe(ready.consistent_lsn);
    expect(await loadFiles(dir, manifest)).toEqual(witness);
    await waitUntil('the holder to exit once ready', () => !processRunning(holder), 10000);
    await agent.stop();
  });

  it('the holder alone killed mid-generate: the writers hold the snapshot and finish it, exact', async () => {
    const agent = await AgentProcess.start(faults.url, [], slow);
    const dir = dirOf('holder-killed');
    const id = await generate(faults, dir, splitOptions);
    const holder = await holderOf(agent, id);
    const witness = await witnessHashes(faults, (await waitUntil('the snapshot recorded', async () => (await status(faults, id)).snapshot_name))!);
    await waitMidWrite(faults, id, agent);
    process.kill(holder, 'SIGKILL');
    await waitUntil('the holder gone', () => !processRunning(holder), 5000);
    await waitState(faults, id, ['ready'], agent);
    expect(await loadFiles(dir, checkedManifest(dir))).toEqual(witness);
    await agent.stop();
  });

  it('agent and holder killed mid-generate: the next agent cannot resume without the snapshot and fails clearly, leaving no slot, publication or file', async () => {
    let agent = await AgentProcess.start(faults.url, [], slow);
    const dir = dirOf('lost');
    const id = await generate(faults, dir, splitOptions);
    const holder = await holderOf(agent, id);
    await waitMidWrite(faults, id, agent);
    await agent.stop('SIGKILL');
    process.kill(holder, 'SIGKILL');
    await waitUntil('the holder gone', () => !processRunning(holder), 5000);
    expect(fs.readdirSync(path.join(dir, 'data')).length).toBeGreaterThan(0);

    agent = await AgentProcess.start(faults.url);
    const failed = await waitState(faults, id, ['failed'], agent);
    expect(failed.error).toMatch(/the exported snapshot .* no longer exists/);
    expect(failed.hint).toMatch(/generate a new snapshot/);
    const left = await slotsAndPublications(faults);
    expect(left.slots).not.toContain(`steep_${id}`);
    expect(left.publications).not.toContain(`steep_${id}`);
    await waitUntil('the files removed', () => !fs.existsSync(dir), 10000);
    const [event] = await query(faults.url, "SELECT details FROM steep_repl.audit_log WHERE event = 'snapshot.failed' AND details ->> 'snapshot_id' = $1", [id]);
    expect(event.details).toMatchObject({ slot_dropped: true, publication_dropped: true });
    await agent.stop();
  });

  it('delete: a ready snapshot loses its slot, publication and files; a generating one stops and leaves nothing', async () => {
    let agent = await AgentProcess.start(faults.url);
    const readyDir = dirOf('delete-ready');
    const readyId = await generate(faults, readyDir, { compression: 'gzip' });
    await waitState(faults, readyId, ['ready'], agent);
    // a file of the user's beside the snapshot's stays, and so does the directory
    fs.writeFileSync(path.join(readyDir, 'NOTES.txt'), 'keep me');
    const [{ d }] = await query(faults.url, 'SELECT steep_repl.delete_snapshot($1) AS d', [readyId]);
    expect(d).toMatchObject({ snapshot_id: readyId, state: 'deleted', was: 'ready', slot_dropped: true, publication_dropped: true, publication_kept: false });
    await waitUntil('the files removed', () => fs.readdirSync(readyDir).length === 1, 15000);
    expect(fs.readdirSync(readyDir)).toEqual(['NOTES.txt']);
    const left = await slotsAndPublications(faults);
    expect(left.slots).not.toContain(`steep_${readyId}`);
    expect(left.publications).not.toContain(`steep_${readyId}`);
    expect((await status(faults, readyId)).state).toBe('deleted');

    await agent.stop();
    agent = await AgentProcess.start(faults.url, [], slow);
    const genDir = dirOf('delete-generating');
    const genId = await generate(faults, genDir, splitOptions);
    const holder = await holderOf(agent, genId);
    await waitMidWrite(faults, genId, agent);
    const [{ g }] = await query(faults.url, 'SELECT steep_repl.delete_snapshot($1) AS g', [genId]);
    expect(g).toMatchObject({ was: 'generating', slot_dropped: true, publication_dropped: true });
    await agent.waitFor((l) => l.event === 'snapshot.generate_stopped' && l.snapshot_id === genId, 15000);
    await waitUntil('the files removed', () => !fs.existsSync(genDir), 15000);
    await waitUntil('the holder to exit', () => !processRunning(holder), 10000);
    const after = await slotsAndPublications(faults);
    expect(after.slots).not.toContain(`steep_${genId}`);
    expect(after.publications).not.toContain(`steep_${genId}`);
    expect((await status(faults, genId)).state).toBe('deleted');
    const err = await pgError(query(faults.url, 'SELECT steep_repl.snapshot_status($1)', ['snap_nope']));
    expect(err.code).toBe('SR001');
    expect(err.hint).toContain(genId);
    await agent.stop();
  });

  it('expiry drops the slot and publication and keeps the files; the watch warns of retained WAL and fails a snapshot whose slot is gone', async () => {
    const agent = await AgentProcess.start(gen.url, [], { STEEP_REPL_SNAPSHOT_WATCH_SECONDS: '1', STEEP_REPL_SNAPSHOT_WAL_WARN_BYTES: '1' });
    const dir = dirOf('expire');
    const id = await generate(gen, dir, { expires: '1 minute', compression: 'none' });
    await waitState(gen, id, ['ready'], agent);
    // retained WAL grows with every write
    await query(gen.url, 'UPDATE public.accounts SET note = note WHERE id <= 100');
    await agent.waitFor((l) => l.event === 'snapshot.wal_warning' && l.snapshot_id === id, 15000);
    const [warned] = await query(gen.url, "SELECT details FROM steep_repl.audit_log WHERE event = 'snapshot.slot_at_risk' AND details ->> 'snapshot_id' = $1", [id]);
    expect(warned.details).toMatchObject({ slot_name: `steep_${id}`, threshold_bytes: 1, state: 'ready' });
    expect(warned.details.retained_bytes).toBeGreaterThan(1);

    // with max_slot_wal_keep_size set, a slot close to being invalidated is at risk (safe_wal_size)
    await query(gen.url, "ALTER SYSTEM SET max_slot_wal_keep_size = '10GB'");
    try {
      await query(gen.url, 'SELECT pg_reload_conf()');
      await waitUntil('safe_wal_size known', async () => (await query(gen.url, 'SELECT safe_wal_size FROM pg_replication_slots WHERE slot_name = $1', [`steep_${id}`]))[0]?.safe_wal_size != null);
      const [{ watch }] = await query(gen.url, 'SELECT steep_repl.watch_snapshot_slots($1) AS watch', [20 * 1024 ** 3]);
      expect(watch.at_risk).toEqual(expect.arrayContaining([expect.objectContaining({ snapshot_id: id, reason: expect.stringMatching(/^only .* more WAL may be written before max_slot_wal_keep_size invalidates it/) })]));
    } finally {
      await query(gen.url, 'ALTER SYSTEM RESET max_slot_wal_keep_size');
      await query(gen.url, 'SELECT pg_reload_conf()');
    }

    // due now: the expiry job runs at once
    await query(gen.url, 'UPDATE steep_repl.snapshots SET expires_at = now() WHERE snapshot_id = $1', [id]);
    await query(gen.url, "SELECT graphile_worker.add_job('snapshot_expire', json_build_object('snapshot_id', $1::text), job_key => 'snapshot_expire:' || $1)", [id]);
    await waitState(gen, id, ['expired'], agent, 15000);
    const left = await slotsAndPublications(gen);
    expect(left.slots).not.toContain(`steep_${id}`);
    expect(left.publications).not.toContain(`steep_${id}`);
    checkedManifest(dir);
    expect(await query(gen.url, 'SELECT steep_repl.expire_snapshot($1) AS o', [id])).toEqual([{ o: 'inactive' }]);

    // a ready snapshot whose slot someone dropped can no longer be applied
    const lostId = await generate(gen, dirOf('slot-dropped'), { compression: 'none' });
    await waitState(gen, lostId, ['ready'], agent);
    await query(gen.url, 'SELECT pg_drop_replication_slot($1)', [`steep_${lostId}`]);
    const failed = await waitState(gen, lostId, ['failed'], agent, 15000);
    expect(failed.error).toMatch(/can no longer be applied: its slot .* no longer exists/);
    expect(failed.hint).toMatch(/generate a new one/);
    await agent.stop();
  });
});
