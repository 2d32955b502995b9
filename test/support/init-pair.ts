// A source and a target database for init tests: steep_repl installed in
// both, each registry knowing both nodes, the same user schema on both, data
// on the source. Names are odd on purpose (spaces, quotes, capitals,
// unicode, reserved words) and there is a TOASTed column, a partitioned
// table and sequences.
import { Client, escapeIdentifier } from 'pg';
import { Cluster } from '../../lib/embedded-cluster';
import { createDatabase, dropDatabase, query } from './clusters';
import { runCli } from './processes';
import { waitUntil } from './wait';

export interface NodeDb {
  id: string;
  cluster: Cluster;
  name: string;
  url: string;
}

export interface InitPair {
  source: NodeDb;
  target: NodeDb;
  replicationName: string;
  drop(): Promise<void>;
}

export const userSchemaSql = `
  CREATE SCHEMA "Sales ünit";
  CREATE TABLE "Sales ünit"."Order ""Items"" é" ("Id" bigserial PRIMARY KEY, "select" text NOT NULL, qty int NOT NULL DEFAULT 1);
  CREATE TABLE public.accounts (id int PRIMARY KEY, balance numeric(12,2) NOT NULL, note text);
  CREATE TABLE public.docs (id int PRIMARY KEY, body text NOT NULL);
  CREATE TABLE public.events (id bigint NOT NULL, region int NOT NULL, payload text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
  CREATE TABLE public.events_1 PARTITION OF public.events FOR VALUES IN (1);
  CREATE TABLE public.events_2 PARTITION OF public.events FOR VALUES IN (2);
  CREATE TABLE public.events_other PARTITION OF public.events DEFAULT;
  CREATE TABLE public.slow (id int PRIMARY KEY, v text NOT NULL);
  CREATE SEQUENCE public.ticket_seq;
`;

// A few MB: docs holds TOASTed values of ~1 MB that do not compress.
export const sourceDataSql = (rows = 20000) => `
  INSERT INTO public.accounts SELECT g, g * 1.5, md5(g::text) FROM generate_series(1, ${rows}) g;
  INSERT INTO "Sales ünit"."Order ""Items"" é" ("select", qty) SELECT 'item ' || g, g % 7 FROM generate_series(1, ${rows / 2}) g;
  INSERT INTO public.docs SELECT d, (SELECT string_agg(md5(random()::text || d || g), '') FROM generate_series(1, 32000) g)
    FROM generate_series(1, 3) d;
  INSERT INTO public.events SELECT g, 1 + g % 4, repeat('e', 50) FROM generate_series(1, ${rows / 2}) g;
  SELECT setval('public.ticket_seq', 4242);
`;

// The target applies rows into public.slow through a trigger that sleeps,
// like a target with expensive triggers: the copy of that table takes
// seconds, so a test can act while the copy is observably in progress.
export const slowTargetSql = (msPerRow: number) => `
  CREATE FUNCTION public.slow_down() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN PERFORM pg_sleep(${msPerRow / 1000}); RETURN NEW; END $$;
  CREATE TRIGGER slow_down BEFORE INSERT ON public.slow FOR EACH ROW EXECUTE FUNCTION public.slow_down();
  ALTER TABLE public.slow ENABLE ALWAYS TRIGGER slow_down;
`;

export const userTables = [
  '"Sales ünit"."Order ""Items"" é"',
  'public.accounts',
  'public.docs',
  'public.events',
  'public.slow',
];

async function registerBoth(db: NodeDb, other: NodeDb): Promise<void> {
  const register = "SELECT steep_repl.register_node($1, '127.0.0.1', $2, $3, 'postgres', 50, NULL, $4)";
  await query(db.url, register, [db.id, db.cluster.port, db.name, true]);
  await query(db.url, register, [other.id, other.cluster.port, other.name, false]);
}

// Installed by a CLI child process: graphile-migrate keeps an in-process
// pool that exits the process when a test later stops that server.
async function nodeDatabase(cluster: Cluster, tag: string, id: string): Promise<NodeDb> {
  const db = await createDatabase(cluster, tag);
  const install = await runCli(['install', '--db', db.url]);
  if (install.code !== 0) throw new Error(`install failed: ${install.stderr}`);
  return { id, cluster, ...db };
}

export async function createInitPair(options: {
  tag: string;
  sourceCluster: Cluster;
  targetCluster: Cluster;
  sourceId?: string;
  targetId?: string;
  rows?: number;
  slowRows?: number;
  slowMsPerRow?: number;
}): Promise<InitPair> {
  const source = await nodeDatabase(options.sourceCluster, `${options.tag}_src`, options.sourceId ?? 'Nöde "A" src');
  const target = await nodeDatabase(options.targetCluster, `${options.tag}_tgt`, options.targetId ?? 'Nöde "B" tgt');
  await registerBoth(source, target);
  await registerBoth(target, source);
  await query(source.url, userSchemaSql);
  await query(target.url, userSchemaSql);
  await query(source.url, sourceDataSql(options.rows));
  await query(source.url, `INSERT INTO public.slow SELECT g, 'slow ' || g FROM generate_series(1, ${options.slowRows ?? 1}) g`);
  await query(source.url, 'ANALYZE');
  if (options.slowMsPerRow) await query(target.url, slowTargetSql(options.slowMsPerRow));
  const [{ name }] = await query(target.url, 'SELECT steep_repl.replication_name($1, $2) AS name', [source.id, target.id]);
  return {
    source,
    target,
    replicationName: name,
    drop: async () => {
      await dropReplicationObjects([target, source]);
      await dropDatabase(target.cluster, target.name).catch(() => undefined);
      await dropDatabase(source.cluster, source.name).catch(() => undefined);
    },
  };
}

// Subscriptions and inactive slots an interrupted init may leave behind
// would block DROP DATABASE: subscriptions first (their slots stay), then the slots.
export async function dropReplicationObjects(dbs: Array<{ cluster: Cluster; name: string; url: string }>): Promise<void> {
  for (const db of dbs) {
    const subs = await query(db.url, 'SELECT subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())').catch(() => []);
    for (const { subname } of subs) {
      const id = escapeIdentifier(subname);
      await query(db.url, `ALTER SUBSCRIPTION ${id} DISABLE`).catch(() => undefined);
      await query(db.url, `ALTER SUBSCRIPTION ${id} SET (slot_name = NONE)`).catch(() => undefined);
      await query(db.url, `DROP SUBSCRIPTION IF EXISTS ${id}`).catch(() => undefined);
    }
  }
  for (const db of dbs) {
    await query(db.cluster.url(), 'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active', [
      db.name,
    ]).catch(() => undefined);
  }
}

// md5 over every row of the table, in primary-key order.
export async function tableHash(client: Client, table: string): Promise<string> {
  const { rows: keys } = await client.query(
    `SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY array_position(i.indkey, a.attnum)) AS keys
     FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
     WHERE i.indrelid = $1::regclass AND i.indisprimary`,
    [table],
  );
  const { rows } = await client.query(
    `SELECT count(*)::int AS n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY ${keys[0].keys}), '')) AS hash FROM ${table} t`,
  );
  return `${rows[0].n}:${rows[0].hash}`;
}

export async function contentHashes(url: string, tables = userTables): Promise<Record<string, string>> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const out: Record<string, string> = {};
    for (const t of tables) out[t] = await tableHash(client, t);
    return out;
  } finally {
    await client.end();
  }
}

export async function initStatus(db: NodeDb): Promise<any> {
  const [{ s }] = await query(db.url, 'SELECT steep_repl.init_status($1) AS s', [db.id]);
  return s;
}

// Everything an init may have created, on both sides.
export async function leftovers(pair: InitPair): Promise<{ subscriptions: string[]; slots: string[]; publications: string[] }> {
  const subscriptions = (
    await query(pair.target.url, 'SELECT subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())')
  ).map((r) => r.subname);
  const slots = (await query(pair.source.url, 'SELECT slot_name FROM pg_replication_slots WHERE database = current_database()')).map(
    (r) => r.slot_name,
  );
  const publications = (await query(pair.source.url, 'SELECT pubname FROM pg_publication')).map((r) => r.pubname);
  return { subscriptions, slots, publications };
}

// Waits until the subscription confirmed everything the source wrote so far
// (the insert position: with synchronous_commit = off the write position
// can be behind the last commit).
export async function waitCaughtUp(pair: InitPair, slotName = pair.replicationName): Promise<void> {
  const [{ lsn }] = await query(pair.source.url, 'SELECT pg_current_wal_insert_lsn()::text AS lsn');
  await waitUntil(`slot ${slotName} to confirm ${lsn}`, async () => {
    const rows = await query(pair.source.url, 'SELECT confirmed_flush_lsn >= $2::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $1', [
      slotName,
      lsn,
    ]);
    return rows[0]?.ok;
  });
}
