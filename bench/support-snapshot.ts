// Building blocks of bench/snapshot.ts: the raw baselines a two-phase
// snapshot is measured against (COPY TO STDOUT into files, COPY FROM STDIN
// of those files, with the generate's parts, formats and sessions), a
// generate through the source's agent until its snapshot is ready, and
// what the snapshot's manifest says it holds.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { planParts } from '../agent/copy/parts';
import { ident, qualified } from '../agent/replication/quoting';
import { syncDir, syncFile, tmpSuffix } from '../agent/snapshot/files';
import { copyStatement, TablePlan, tablePlan } from '../agent/snapshot/write-part';
import { Manifest, manifestFile, partFileName } from '../lib/snapshot/manifest';
import { SnapshotPart } from '../lib/sql/snapshots';
import { query } from '../test/support/clusters';
import { AgentProcess } from '../test/support/processes';

// One part of the raw dump and the file it goes to.
export interface DumpItem {
  part: SnapshotPart;
  // the generate's: the columns, binary when every one is a built-in type
  plan: TablePlan;
  file: string;
  // bytes written, once dumped
  bytes: number;
}

// The generate's parts (planParts, the same rule) and per table its COPY
// statement's plan (tablePlan), each part into a file under dir/data named
// as the generate names it.
export async function planDump(sourceUrl: string, tables: readonly string[], rule: { threshold: number; maxParts: number }, dir: string): Promise<DumpItem[]> {
  const client = new Client({ connectionString: sourceUrl });
  await client.connect();
  try {
    const parts = await planParts(
      client,
      tables.map((t) => ({ schema_name: 'public', table_name: t })),
      rule,
    );
    const plans = new Map<string, TablePlan>();
    const items: DumpItem[] = [];
    for (const [i, { state: _state, copies: _copies, ...p }] of parts.entries()) {
      const part: SnapshotPart = { ...p, file_name: partFileName(i + 1, p, 'none') };
      if (!plans.has(part.table_name)) plans.set(part.table_name, await tablePlan(client, part.schema_name, part.table_name));
      items.push({ part, plan: plans.get(part.table_name)!, file: path.join(dir, part.file_name), bytes: 0 });
    }
    return items;
  } finally {
    await client.end();
  }
}

const formatOf = (item: DumpItem) => (item.plan.format === 'binary' ? ' (FORMAT binary)' : '');

// Runs `work` on each item over `sessions` connections, one queue largest
// first (as the generate's and apply's workers take parts). Returns the seconds.
async function overSessions(url: string, items: readonly DumpItem[], sessions: number, work: (client: Client, item: DumpItem) => Promise<void>): Promise<number> {
  const queue = [...items].sort((a, b) => b.part.bytes_estimate - a.part.bytes_estimate);
  const clients = await Promise.all(
    Array.from({ length: Math.min(sessions, queue.length) }, async () => {
      const client = new Client({ connectionString: url });
      await client.connect();
      return client;
    }),
  );
  try {
    const started = Date.now();
    await Promise.all(
      clients.map(async (client) => {
        for (let item = queue.shift(); item; item = queue.shift()) await work(client, item);
      }),
    );
    return (Date.now() - started) / 1000;
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

// The generate's COPY statement of every item into its file as the
// generate writes one (agent/snapshot/write-part.ts), without its counting,
// hashing and compressing: <file>.tmp, synced, renamed, its directory
// synced. Returns the seconds and the bytes written.
export async function rawDump(sourceUrl: string, items: DumpItem[], sessions: number): Promise<{ seconds: number; bytes: number }> {
  for (const d of new Set(items.map((i) => path.dirname(i.file)))) fs.mkdirSync(d, { recursive: true });
  const seconds = await overSessions(sourceUrl, items, sessions, async (client, item) => {
    const tmp = item.file + tmpSuffix;
    const out = client.query(copyTo(copyStatement(item.part, item.plan)));
    out.on('data', (chunk: Buffer) => (item.bytes += chunk.length));
    await pipeline(out, fs.createWriteStream(tmp, { flags: 'wx', mode: 0o640 }));
    await syncFile(tmp);
    await fs.promises.rename(tmp, item.file);
    await syncDir(path.dirname(item.file));
  });
  return { seconds, bytes: items.reduce((s, i) => s + i.bytes, 0) };
}

// COPY ... FROM STDIN of every dumped file into its table on the target
// (which has the schema), one transaction per file. Returns the seconds.
export async function rawLoad(targetUrl: string, items: readonly DumpItem[], sessions: number): Promise<number> {
  return overSessions(targetUrl, items, sessions, async (client, item) => {
    const cols = item.plan.columns.map((c) => ident(c.name)).join(', ');
    await pipeline(fs.createReadStream(item.file), client.query(copyFrom(`COPY ${qualified(item.part)} (${cols}) FROM STDIN${formatOf(item)}`)));
  });
}

// Why a generate cannot run on this source and agent yet, if it cannot.
export async function generateMissing(sourceUrl: string, agent: AgentProcess | undefined): Promise<string | undefined> {
  const [{ fn }] = await query(sourceUrl, "SELECT to_regprocedure('steep_repl.generate_snapshot(text, jsonb)') IS NOT NULL AS fn");
  if (!fn) return 'steep_repl.generate_snapshot is not installed on the source (not built yet)';
  if (!agent) return 'no agent runs on the source';
  return agentMissing(agent, 'snapshot_generate');
}

export function agentMissing(agent: AgentProcess, task: string): string | undefined {
  const started = agent.lines.find((l) => l.event === 'agent.started');
  const tasks = (started?.tasks as string[] | undefined) ?? [];
  return tasks.includes(task) ? undefined : `the agent has no ${task} task (not built yet)`;
}

export interface Generated {
  snapshot_id: string;
  // Date.now() when generate_snapshot was called and when the state was seen ready
  started: number;
  ready: number;
}

// generate_snapshot on the source, then its state polled every 50 ms until
// ready; failed (or the job failing in the agent, or the agent exiting) throws.
export async function generateSnapshot(sourceUrl: string, agent: AgentProcess, dir: string, options: Record<string, unknown>, timeoutMs: number): Promise<Generated> {
  const client = new Client({ connectionString: sourceUrl });
  await client.connect();
  try {
    const seenLines = agent.lines.length;
    const started = Date.now();
    const { rows } = await client.query('SELECT steep_repl.generate_snapshot($1, $2) AS r', [dir, options]);
    const id: string = rows[0].r.snapshot_id;
    for (;;) {
      const { rows: state } = await client.query('SELECT state, error, hint FROM steep_repl.snapshots WHERE snapshot_id = $1', [id]);
      if (state[0]?.state === 'ready') return { snapshot_id: id, started, ready: Date.now() };
      if (state[0]?.state !== 'generating') {
        throw new Error(`snapshot ${id} is ${state[0]?.state ?? 'gone'}: ${state[0]?.error ?? 'no error given'}${state[0]?.hint ? ` (hint: ${state[0].hint})` : ''}`);
      }
      const failed = agent.lines.slice(seenLines).find((l) => l.event === 'job.failed' && l.task === 'snapshot_generate');
      if (failed) throw new Error(`the agent's snapshot_generate job failed: ${failed.error}`);
      if (!agent.running) throw new Error(`the source's agent exited while generating ${id}`);
      if (Date.now() - started > timeoutMs) throw new Error(`snapshot ${id} not ready within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await client.end();
  }
}

// Where the generate's time went, from the rows' own timestamps: until the
// first part began (slot, exported snapshot, plan), writing the parts, and
// after the last part (schema.sql, sequences, manifest, release).
export async function generatePhases(sourceUrl: string, id: string): Promise<{ setup: number; write: number; finish: number } | undefined> {
  const rows = await query(
    sourceUrl,
    `SELECT extract(epoch FROM min(p.started_at) - s.created_at)::float8 AS setup,
            extract(epoch FROM max(p.finished_at) - min(p.started_at))::float8 AS write,
            extract(epoch FROM s.finished_at - max(p.finished_at))::float8 AS finish
       FROM steep_repl.snapshots s JOIN steep_repl.snapshot_parts p USING (snapshot_id)
      WHERE s.snapshot_id = $1 GROUP BY s.created_at, s.finished_at`,
    [id],
  ).catch(() => []);
  const r = rows[0];
  return r && r.setup !== null && r.write !== null && r.finish !== null ? { setup: r.setup, write: r.write, finish: r.finish } : undefined;
}

export function readManifest(dir: string): Manifest {
  return JSON.parse(fs.readFileSync(path.join(dir, manifestFile), 'utf8'));
}

// What is wrong with a generated snapshot against the source and the raw
// dump: rows, the files' sizes, each table's COPY format, the raw bytes.
export function manifestProblems(dir: string, manifest: Manifest, counts: Record<string, string>, dump: readonly DumpItem[] | undefined): string[] {
  const problems: string[] = [];
  for (const [table, count] of Object.entries(counts)) {
    const t = manifest.tables.find((m) => m.schema_name === 'public' && m.table_name === table);
    if (!t) problems.push(`${table} not in the manifest`);
    else if (String(t.rows) !== count) problems.push(`${table}: ${t.rows} rows in the manifest, ${count} on the source`);
  }
  const onDisk = manifest.tables.flatMap((t) => t.parts).reduce((s, p) => s + fs.statSync(path.join(dir, p.file)).size, 0);
  if (onDisk !== manifest.totals.stored_bytes) problems.push(`data files hold ${onDisk} bytes, the manifest says ${manifest.totals.stored_bytes}`);
  if (dump?.length) {
    for (const t of manifest.tables) {
      const format = dump.find((i) => i.part.table_name === t.table_name)?.plan.format;
      if (format && format !== t.format) problems.push(`${t.table_name}: written as ${t.format}, the raw dump as ${format}`);
    }
    const dumped = dump.reduce((s, i) => s + i.bytes, 0);
    if (dumped !== manifest.totals.raw_bytes) problems.push(`raw bytes ${manifest.totals.raw_bytes}, the raw dump's ${dumped}`);
  }
  return problems;
}

// After an apply: the target's subscription and slots are dropped by the
// caller; on the source, the copied slot and the pair's publication go
// too, the snapshots' own slots and publications stay (the next apply
// streams from another snapshot's).
export async function dropApplyLeftovers(sourceUrl: string): Promise<void> {
  await query(
    sourceUrl,
    `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
      WHERE database = current_database() AND NOT active AND slot_name NOT IN (SELECT slot_name FROM steep_repl.snapshots)`,
  ).catch(() => undefined);
  const pubs = await query(sourceUrl, 'SELECT pubname FROM pg_publication WHERE pubname NOT IN (SELECT publication FROM steep_repl.snapshots)').catch(() => []);
  for (const { pubname } of pubs) await query(sourceUrl, `DROP PUBLICATION IF EXISTS ${ident(pubname)}`).catch(() => undefined);
}
