// Three databases for the reinit tests: node A, node B synchronized from A
// by a snapshot init (B's agent a real process), and a peer C subscribed to
// B with origin = none and copy_data = false, holding the same rows from
// the start (a plain subscription, as another tool would make it). Whatever
// of a reinit of B reached C would show there: a truncate empties C's
// table, a copied row breaks its apply on a duplicate key. Names are odd on
// purpose; B's t1 applies rows through a trigger that sleeps, so its copy
// takes seconds and a test can act while it runs.
import { escapeIdentifier } from 'pg';
import { Cluster } from '../../lib/embedded-cluster';
import { getSlotLag } from '../../lib/sql/getSlotLag';
import { createDatabase, dropDatabase, query, withClient } from './clusters';
import { contentHashes } from './content-hash';
import { createNodeDb, dropReplicationObjects, NodeDb, registerPair } from './node-pair';
import { AgentProcess, runCli } from './processes';
import { waitUntil } from './wait';

export const oddSchema = 'Ré "q" sch ä';
const s = escapeIdentifier(oddSchema);
export const oddTables = [`${s}."T ä"`, `${s}.other`];
export const tables = ['public.t1', 'public.t2', ...oddTables, 'public.parent', 'public.child'];

const schemaSql = `
  CREATE SCHEMA ${s};
  CREATE TABLE public.t1 (id int PRIMARY KEY, v text NOT NULL, n numeric(10,2));
  CREATE TABLE public.t2 (id bigint PRIMARY KEY, v text NOT NULL);
  CREATE TABLE ${s}."T ä" (id int PRIMARY KEY, v text);
  CREATE TABLE ${s}.other (id int PRIMARY KEY, ref int REFERENCES ${s}."T ä" (id));
  CREATE TABLE public.parent (id int PRIMARY KEY, v text);
  CREATE TABLE public.child (id int PRIMARY KEY, parent_id int CONSTRAINT "child → parent" REFERENCES public.parent (id));
  CREATE SEQUENCE public.ticket_seq;
`;

const dataSql = (rows: number) => `
  INSERT INTO public.t1 SELECT g, 'v' || g, g * 1.5 FROM generate_series(1, ${rows}) g;
  INSERT INTO public.t2 SELECT g, 'w' || g FROM generate_series(1, ${rows}) g;
  INSERT INTO ${s}."T ä" SELECT g, 'ä' || g FROM generate_series(1, ${rows}) g;
  INSERT INTO ${s}.other SELECT g, g FROM generate_series(1, 100) g;
  INSERT INTO public.parent SELECT g, 'p' || g FROM generate_series(1, 20) g;
  INSERT INTO public.child SELECT g, g FROM generate_series(1, 20) g;
  SELECT setval('public.ticket_seq', 777);
  ANALYZE;
`;

// B applies t1 and "T ä" slowly (also the table sync's COPY: ALWAYS triggers fire under replication).
const slowSql = (msPerRow: number) => `
  CREATE FUNCTION public.slow_down() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN PERFORM pg_sleep(${msPerRow / 1000}); RETURN NEW; END $$;
  CREATE TRIGGER slow_down BEFORE INSERT ON public.t1 FOR EACH ROW EXECUTE FUNCTION public.slow_down();
  ALTER TABLE public.t1 ENABLE ALWAYS TRIGGER slow_down;
  CREATE TRIGGER slow_down BEFORE INSERT ON ${s}."T ä" FOR EACH ROW EXECUTE FUNCTION public.slow_down();
  ALTER TABLE ${s}."T ä" ENABLE ALWAYS TRIGGER slow_down;
`;

export interface ReinitNodes {
  a: NodeDb;
  b: NodeDb;
  c: { cluster: Cluster; name: string; url: string };
  agent: AgentProcess;
  // C's subscription from B, and its slot on B's cluster (named after the
  // file's tag: slot names are cluster-wide)
  peerSubscription: string;
  // the pair's publication, subscription and slot
  pairName: string;
  // starts B's agent again (after a test killed it)
  restartAgent(env?: Record<string, string>): Promise<AgentProcess>;
  drop(): Promise<void>;
}

export async function createReinitNodes(options: {
  tag: string;
  clusterA: Cluster;
  clusterB: Cluster;
  rows?: number;
  slowMsPerRow?: number;
  agentEnv?: Record<string, string>;
}): Promise<ReinitNodes> {
  const rows = options.rows ?? 2000;
  const [a, b] = await Promise.all([
    // ids of this file's own (slots are named after the pair, cluster-wide)
    createNodeDb(options.clusterA, `${options.tag}_a`, `Nöde A ${options.tag}`),
    createNodeDb(options.clusterB, `${options.tag}_b`, `Nöde "B" ${options.tag}`),
  ]);
  const c = { cluster: options.clusterA, ...(await createDatabase(options.clusterA, `${options.tag}_c`)) };
  await registerPair(a, b);
  await Promise.all([query(a.url, schemaSql), query(b.url, schemaSql), query(c.url, schemaSql)]);
  await Promise.all([query(a.url, dataSql(rows)), query(c.url, dataSql(rows))]);
  if (options.slowMsPerRow) await query(b.url, slowSql(options.slowMsPerRow));
  const nodes: ReinitNodes = {
    a,
    b,
    c,
    agent: await AgentProcess.start(b.url, [], options.agentEnv),
    peerSubscription: `c_from_b_${options.tag}`,
    pairName: (await query(b.url, 'SELECT steep_repl.replication_name($1, $2) AS name', [a.id, b.id]))[0].name,
    restartAgent: async (env) => (nodes.agent = await AgentProcess.start(b.url, [], { ...options.agentEnv, ...env })),
    drop: async () => {
      await nodes.agent.stop('SIGKILL');
      await dropReplicationObjects([c, b, a]);
      await Promise.all([dropDatabase(c.cluster, c.name), dropDatabase(b.cluster, b.name), dropDatabase(a.cluster, a.name)].map((p) => p.catch(() => undefined)));
    },
  };
  const init = await runCli(['node', 'start', b.id, '--from', a.id, '--db', b.url]);
  if (init.code !== 0) throw new Error(`node start failed (exit ${init.code}): ${init.stdout}\n${init.stderr}`);
  await query(b.url, `CREATE PUBLICATION to_c FOR TABLE ${tables.join(', ')}`);
  await query(c.url, `CREATE SUBSCRIPTION ${nodes.peerSubscription} CONNECTION '${b.url}' PUBLICATION to_c WITH (copy_data = false, origin = none)`);
  await waitUntil('C streaming from B', async () => (await query(c.url, 'SELECT pid FROM pg_stat_subscription WHERE subname = $1 AND pid IS NOT NULL', [nodes.peerSubscription])).length > 0);
  return nodes;
}

// A slot has confirmed everything its server wrote so far.
export async function waitSlotCaughtUp(url: string, slot: string, timeoutMs = 30000): Promise<void> {
  const { current_lsn: lsn } = await withClient(url, (client) => getSlotLag(client, slot));
  await waitUntil(`slot ${slot} to confirm ${lsn}`, () => withClient(url, async (client) => (await getSlotLag(client, slot, lsn)).reached), timeoutMs, 100);
}

// B has all of A's changes, C all of B's own.
export async function settle(nodes: ReinitNodes): Promise<void> {
  await waitSlotCaughtUp(nodes.a.url, nodes.pairName);
  await waitSlotCaughtUp(nodes.b.url, nodes.peerSubscription);
}

export const hashes = (url: string, which: readonly string[] = tables) => contentHashes(url, which);

// One row missing (5), one extra (100001), one different (7) on B, made as
// replication would (session_replication_role = replica: no triggers fire).
// C receives them as B's own changes: a later divergence of the same table
// takes other keys (shift), or C's apply would stop on the extra row's key.
export const divergeSql = (table: string, shift = 0) => `
  SET session_replication_role = replica;
  DELETE FROM ${table} WHERE id = ${5 + shift};
  INSERT INTO ${table} (id, v) VALUES (${100001 + shift}, 'only on B');
  UPDATE ${table} SET v = 'changed on B' WHERE id = ${7 + shift};
  RESET session_replication_role;
`;

// The node's state and the reinit's record, as start_reinit left them.
export async function reinitOf(db: NodeDb): Promise<{ state: string; reinit: any; phase: string; cancel_requested_at: Date | null }> {
  const [row] = await query(
    db.url,
    `SELECT n.init_state AS state, p.reinit, p.phase, p.cancel_requested_at
     FROM steep_repl.nodes n LEFT JOIN steep_repl.init_progress p USING (node_id) WHERE n.node_id = $1`,
    [db.id],
  );
  return row;
}

export async function waitState(db: NodeDb, states: string[], timeoutMs = 60000): Promise<string> {
  return waitUntil(`node ${db.id} to be ${states.join(' or ')}`, async () => {
    const { state } = await reinitOf(db);
    return states.includes(state) && state;
  }, timeoutMs, 100);
}

// The events of a reinit of tables that re-copied them and verified them
// equal: each step's once, in order.
export const recopiedEvents = ['reinit.started', 'reinit.tables_removed', 'reinit.tables_emptied', 'reinit.copy_started', 'reinit.completed'];

export async function events(db: NodeDb, prefix = 'reinit.'): Promise<Array<{ event: string; details: any }>> {
  return query(db.url, "SELECT event, details FROM steep_repl.audit_log WHERE node_id = $1 AND event LIKE $2 || '%' ORDER BY audit_id", [db.id, prefix]);
}

// C's apply of B's stream: no worker errors (a copied row arriving would fail on its key).
export async function peerApplyErrors(nodes: ReinitNodes): Promise<number> {
  const [row] = await query(nodes.c.url, 'SELECT (apply_error_count + sync_error_count)::int AS n FROM pg_stat_subscription_stats WHERE subname = $1', [nodes.peerSubscription]);
  return row.n;
}
