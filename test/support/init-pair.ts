// A source and a target database for init tests: steep_repl installed in
// both, each registry knowing both nodes, the same user schema on both, data
// on the source. Names are odd on purpose (spaces, quotes, capitals,
// unicode, reserved words) and there is a TOASTed column, a partitioned
// table and sequences.
import { QueryConfig } from 'pg';
import { Cluster } from '../../lib/embedded-cluster';
import { getInitStatus } from '../../lib/sql/getInitStatus';
import { getSlotLag } from '../../lib/sql/getSlotLag';
import { dropDatabase, query, withClient } from './clusters';
import { contentHashes as hashesOf } from './content-hash';
import { createNodeDb, dropReplicationObjects, registerPair } from './node-pair';
import type { NodeDb } from './node-pair';
import { waitUntil } from './wait';

export { tableHash } from './content-hash';
export { dropReplicationObjects } from './node-pair';
export type { NodeDb } from './node-pair';

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
  // Installed by a CLI process: tests stop these servers under a running agent.
  // Default ids carry the tag: a slot is named after its pair and is
  // cluster-wide, so two files on one cluster need pairs of their own.
  const source = await createNodeDb(options.sourceCluster, `${options.tag}_src`, options.sourceId ?? `Nöde "A" ${options.tag}`, { installer: 'cli' });
  const target = await createNodeDb(options.targetCluster, `${options.tag}_tgt`, options.targetId ?? `Nöde "B" ${options.tag}`, { installer: 'cli' });
  await registerPair(source, target);
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

export async function contentHashes(url: string, tables: readonly string[] = userTables): Promise<Record<string, string>> {
  return hashesOf(url, tables);
}

// Untyped: tests read into fields the InitStatus type has as nullable.
export async function initStatus(db: NodeDb): Promise<any> {
  return withClient(db.url, (client) => getInitStatus(client, db.id));
}

// The init's job once it has left the queue: the task returns (the node
// already synchronized or failed), then graphile-worker deletes the row.
export async function waitJobDone(db: NodeDb): Promise<void> {
  await waitUntil('the init job to leave the queue', async () => (await initStatus(db)).job === null, 10000, 50);
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
// (steep_repl.slot_lag: from the insert position, which with
// synchronous_commit = off can be ahead of the write position).
export async function waitCaughtUp(pair: InitPair, slotName = pair.replicationName): Promise<void> {
  const { current_lsn: lsn } = await withClient(pair.source.url, (client) => getSlotLag(client, slotName));
  await waitUntil(`slot ${slotName} to confirm ${lsn}`, () => withClient(pair.source.url, async (client) => (await getSlotLag(client, slotName, lsn)).reached));
}

// The copy is under way: the slow table is copying (rows arrived) and, if
// asked, the other tables are done already.
export async function waitForCopyInProgress(pair: InitPair, options: { otherTablesDone?: boolean; everyMs?: number } = {}): Promise<void> {
  await waitUntil(
    'a copy in progress',
    async () => {
      const s = await initStatus(pair.target);
      const slow = s.tables.find((t: any) => t.table_name === 'slow');
      const done = s.tables.filter((t: any) => t.state === 'done').length;
      return s.state === 'copying' && slow?.state === 'copying' && Number(slow.rows_copied) > 0 && (!options.otherTablesDone || done > 0);
    },
    30000,
    options.everyMs,
  );
}

// Inserts, updates and deletes on the source's user tables, for startWriter:
// rows of its own from id 1,000,000, updates and deletes among the seeded ones.
export function sourceWrites(rows = 20000): (n: number) => QueryConfig[] {
  return (n) => {
    const next = 1_000_000 + n;
    return [
      { text: 'INSERT INTO public.accounts VALUES ($1, 1, $2)', values: [next, 'new'] },
      { text: 'UPDATE public.accounts SET balance = balance + 1, note = note || $2 WHERE id = $1', values: [1 + (next % rows), 'u'] },
      { text: 'DELETE FROM public.accounts WHERE id = $1', values: [rows - (next % Math.round(rows * 0.95))] },
      { text: `INSERT INTO "Sales ünit"."Order ""Items"" é" ("select") VALUES ($1)`, values: [`w${next}`] },
      { text: 'INSERT INTO public.events VALUES ($1, $2, $3)', values: [next, 1 + (next % 5), 'w'] },
    ];
  };
}
