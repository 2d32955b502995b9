// Building blocks of bench/copy.ts (and bench/snapshot.ts): the dataset,
// the raw COPY pipe, content checks and the agent's memory as /proc reports it.
import * as fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { Cluster } from '../lib/embedded-cluster';
import { createDatabase, query } from '../test/support/clusters';
import { createNodeDb, NodeDb, registerIn } from '../test/support/node-pair';

export const MiB = 1024 * 1024;

export interface TableSpec {
  name: string;
  // CREATE TABLE body
  columns: string;
  // INSERT statements that fill it, each a chunk of generate_series
  fill: string[];
  // integer primary key column to split it by, else null (ctid ranges)
  key: string | null;
}

// ~272 bytes per row on disk (30 rows a page): bigint, timestamptz, 224 chars.
const bigRowBytes = 272;
const bigChunkRows = 250_000;
// ~136 bytes per row: int, 96 chars.
const smallRowBytes = 136;

function chunks(rows: number, statement: (from: number, to: number) => string): string[] {
  const out: string[] = [];
  for (let from = 1; from <= rows; from += bigChunkRows) out.push(statement(from, Math.min(rows, from + bigChunkRows - 1)));
  return out;
}

// A table shaped like bench/init.ts's big table, of about `megabytes`.
export function bigTable(name: string, megabytes: number, withKey = true): TableSpec {
  const rows = Math.max(1, Math.round((megabytes * MiB) / bigRowBytes));
  const values = `now() - g * interval '1 second', md5(g::text) || repeat(md5((g * 7)::text), 6)`;
  return withKey
    ? {
        name,
        columns: 'id bigint PRIMARY KEY, created timestamptz NOT NULL, payload text NOT NULL',
        fill: chunks(rows, (from, to) => `INSERT INTO "${name}" SELECT g, ${values} FROM generate_series(${from}, ${to}) g`),
        key: 'id',
      }
    : {
        name,
        columns: 'seq bigint NOT NULL, created timestamptz NOT NULL, payload text NOT NULL',
        fill: chunks(rows, (from, to) => `INSERT INTO "${name}" SELECT g, ${values} FROM generate_series(${from}, ${to}) g`),
        key: null,
      };
}

export function smallTable(name: string, megabytes: number): TableSpec {
  const rows = Math.max(1, Math.round((megabytes * MiB) / smallRowBytes));
  return {
    name,
    columns: 'id int PRIMARY KEY, v text NOT NULL',
    fill: [`INSERT INTO "${name}" SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, ${rows}) g`],
    key: 'id',
  };
}

export function schemaSql(tables: readonly TableSpec[]): string {
  // without a key, REPLICA IDENTITY FULL: the subscription can then apply its updates and deletes
  return tables.map((t) => `CREATE TABLE "${t.name}" (${t.columns})${t.key ? '' : `;\nALTER TABLE "${t.name}" REPLICA IDENTITY FULL`}`).join(';\n');
}

// Fills the tables over `sessions` connections, then VACUUM (FREEZE,
// ANALYZE): no run pays for setting hint bits on the source.
export async function generate(url: string, tables: readonly TableSpec[], sessions = 2): Promise<void> {
  const statements = tables.flatMap((t) => t.fill);
  let next = 0;
  await Promise.all(
    Array.from({ length: sessions }, async () => {
      const client = new Client({ connectionString: url });
      await client.connect();
      try {
        while (next < statements.length) await client.query(statements[next++]);
      } finally {
        await client.end();
      }
    }),
  );
  await query(url, 'VACUUM (FREEZE, ANALYZE)');
}

export function numberArg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

export function stringArg(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

export interface Dataset {
  source: NodeDb;
  tables: TableSpec[];
  sizes: Record<string, number>;
  bytes: number;
  // per table: count:hash on the source, to check targets against
  sums: Record<string, string>;
  counts: Record<string, string>;
}

// A source node (registered as itself) holding the tables, filled and
// hashed; prints what it holds.
export async function buildDataset(cluster: Cluster, id: string, tables: TableSpec[]): Promise<Dataset> {
  const source = await createNodeDb(cluster, id, id, { installer: 'cli' });
  await registerIn(source, source);
  await query(source.url, schemaSql(tables));
  const generating = Date.now();
  await generate(source.url, tables);
  const sizes = await tableSizes(source.url, tables);
  const bytes = Object.values(sizes).reduce((a, b) => a + b, 0);
  const names = tables.map((t) => t.name);
  const hashing = Date.now();
  const sums = await contentSums(source.url, names);
  const counts = await rowCounts(source.url, names);
  const list = tables.map((t) => `${t.name} ${(sizes[t.name] / MiB).toFixed(0)}`).join(', ');
  console.log(
    `dataset ${id}: ${(bytes / MiB).toFixed(0)} MB in ${tables.length} tables (MB: ${list.length > 160 ? list.slice(0, 160) + ', ...' : list}); generated in ${((hashing - generating) / 1000).toFixed(0)} s, hashed in ${((Date.now() - hashing) / 1000).toFixed(0)} s`,
  );
  return { source, tables, sizes, bytes, sums, counts };
}

// A plain database with the schema, for the baselines.
export async function plainTarget(cluster: Cluster, tag: string, data: Dataset): Promise<{ name: string; url: string }> {
  const db = await createDatabase(cluster, tag);
  await query(db.url, schemaSql(data.tables));
  return db;
}

export async function tableSizes(url: string, tables: readonly TableSpec[]): Promise<Record<string, number>> {
  const rows = await query(url, `SELECT t AS name, pg_table_size(format('%I', t)::regclass)::float8 AS bytes FROM unnest($1::text[]) t`, [
    tables.map((t) => t.name),
  ]);
  return Object.fromEntries(rows.map((r) => [r.name, Number(r.bytes)]));
}

// One piece of work of the raw pipe: a whole table or a range of it.
export interface PipeItem {
  table: string;
  // a WHERE clause over the source table, or none for the whole table
  where?: string;
  bytes: number;
}

// Splits a table into `parts` ranges: by its integer key where it has one,
// else by ctid block ranges (TID range scans, PostgreSQL 14+).
export async function splitItems(url: string, table: TableSpec, bytes: number, parts: number): Promise<PipeItem[]> {
  if (parts <= 1) return [{ table: table.name, bytes }];
  const items: PipeItem[] = [];
  if (table.key) {
    const [{ lo, hi }] = await query(url, `SELECT min("${table.key}")::int8::text AS lo, (max("${table.key}") + 1)::int8::text AS hi FROM "${table.name}"`);
    const [low, high] = [BigInt(lo), BigInt(hi)];
    const step = (high - low + BigInt(parts) - 1n) / BigInt(parts);
    for (let i = 0; i < parts; i++) {
      const a = low + step * BigInt(i);
      const b = i === parts - 1 ? high : a + step;
      items.push({ table: table.name, where: `"${table.key}" >= ${a} AND "${table.key}" < ${b}`, bytes: bytes / parts });
    }
  } else {
    const [{ pages }] = await query(url, `SELECT (pg_relation_size($1::regclass) / current_setting('block_size')::int)::int AS pages`, [`"${table.name}"`]);
    const step = Math.ceil((pages + 1) / parts);
    for (let i = 0; i < parts; i++) {
      const a = step * i;
      const where = i === parts - 1 ? `ctid >= '(${a},0)'::tid` : `ctid >= '(${a},0)'::tid AND ctid < '(${a + step},0)'::tid`;
      items.push({ table: table.name, where, bytes: bytes / parts });
    }
  }
  return items;
}

// COPY ... TO STDOUT | COPY ... FROM STDIN, binary, over `streams` pairs of
// sessions; the items in one queue, largest first. Returns the seconds.
export async function rawPipe(sourceUrl: string, targetUrl: string, items: readonly PipeItem[], streams: number): Promise<number> {
  const queue = [...items].sort((a, b) => b.bytes - a.bytes);
  const pairs = await Promise.all(
    Array.from({ length: streams }, async () => {
      const source = new Client({ connectionString: sourceUrl });
      const target = new Client({ connectionString: targetUrl });
      await Promise.all([source.connect(), target.connect()]);
      return { source, target };
    }),
  );
  try {
    const started = Date.now();
    await Promise.all(
      pairs.map(async ({ source, target }) => {
        for (let item = queue.shift(); item; item = queue.shift()) {
          const read = item.where ? `(SELECT * FROM "${item.table}" WHERE ${item.where})` : `"${item.table}"`;
          await pipeline(
            source.query(copyTo(`COPY ${read} TO STDOUT (FORMAT binary)`)),
            target.query(copyFrom(`COPY "${item.table}" FROM STDIN (FORMAT binary)`)),
          );
        }
      }),
    );
    return (Date.now() - started) / 1000;
  } finally {
    await Promise.all(pairs.flatMap(({ source, target }) => [source.end(), target.end()]));
  }
}

// Per table: row count and an order-free sum of row hashes (a string_agg
// of a 1 GB table would pass PostgreSQL's 1 GB value limit).
export async function contentSums(url: string, tables: readonly string[]): Promise<Record<string, string>> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const out: Record<string, string> = {};
    for (const t of tables) {
      const { rows } = await client.query(`SELECT count(*)::int8::text AS n, coalesce(sum(hashtextextended(t::text, 0)), 0)::text AS h FROM "${t}" t`);
      out[t] = `${rows[0].n}:${rows[0].h}`;
    }
    return out;
  } finally {
    await client.end();
  }
}

export async function rowCounts(url: string, tables: readonly string[]): Promise<Record<string, string>> {
  const [row] = await query(url, `SELECT ${tables.map((t, i) => `(SELECT count(*) FROM "${t}")::int8::text AS c${i}`).join(', ')}`);
  return Object.fromEntries(tables.map((t, i) => [t, row[`c${i}`]]));
}

// Tables whose values differ, as "table: source != target".
export function differences(source: Record<string, string>, target: Record<string, string>): string[] {
  return Object.keys(source)
    .filter((t) => source[t] !== target[t])
    .map((t) => `${t}: ${source[t]} != ${target[t] ?? 'missing'}`);
}

// kB fields of /proc/<pid>/status (VmHWM: peak resident set, VmRSS: now),
// in bytes; undefined once the process is gone.
export function procStatus(pid: number): { hwm: number; rss: number } | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
  } catch {
    return undefined;
  }
}

// The children of a process (an agent that forks would hold memory there).
export function childPids(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((task) => fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/))
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}
