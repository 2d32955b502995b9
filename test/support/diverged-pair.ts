// A synchronized pair for the verify and reinit front ends: a source and a
// target registered with each other, agents on both, a snapshot init by the
// CLI; then a divergence made by hand on the target (session_replication_role
// = replica, so nothing of it replicates). Names are odd on purpose.
import { Cluster } from '../../lib/embedded-cluster';
import { dropDatabase, query } from './clusters';
import { createNodeDb, dropReplicationObjects, NodeDb, registerPair } from './node-pair';
import { AgentProcess, runCli } from './processes';

export const pairSchemaSql = `
  CREATE SCHEMA "Sales ünit";
  CREATE TABLE public.items (id int PRIMARY KEY, v text NOT NULL, amount numeric(10,2) NOT NULL);
  CREATE TABLE "Sales ünit"."Odd ""T""" (id bigint PRIMARY KEY, label text);
  CREATE TABLE public.notes (id int PRIMARY KEY, body text);
`;

export const pairTables = ['public.items', '"Sales ünit"."Odd ""T"""', 'public.notes'];

const pairDataSql = (rows: number) => `
  INSERT INTO public.items SELECT g, 'item ' || g, g * 1.25 FROM generate_series(1, ${rows}) g;
  INSERT INTO "Sales ünit"."Odd ""T""" SELECT g, 'odd ' || g FROM generate_series(1, ${rows / 2}) g;
  INSERT INTO public.notes SELECT g, 'note ' || g FROM generate_series(1, 100) g;
  ANALYZE;
`;

// One row missing on the target (5), one extra (100001), one different (7).
export const divergeItemsSql = `
  SET session_replication_role = replica;
  DELETE FROM public.items WHERE id = 5;
  INSERT INTO public.items VALUES (100001, 'only here', 1);
  UPDATE public.items SET v = 'changed here' WHERE id = 7;
  RESET session_replication_role;
`;

export interface SyncedPair {
  source: NodeDb;
  target: NodeDb;
  agents: AgentProcess[];
  drop(): Promise<void>;
}

export async function createSyncedPair(options: { tag: string; sourceCluster: Cluster; targetCluster: Cluster; sourceId: string; targetId: string; rows?: number }): Promise<SyncedPair> {
  const [source, target] = await Promise.all([
    createNodeDb(options.sourceCluster, `${options.tag}_src`, options.sourceId),
    createNodeDb(options.targetCluster, `${options.tag}_tgt`, options.targetId),
  ]);
  await registerPair(source, target);
  await Promise.all([query(source.url, pairSchemaSql), query(target.url, pairSchemaSql)]);
  await query(source.url, pairDataSql(options.rows ?? 4000));
  const agents = await Promise.all([AgentProcess.start(source.url), AgentProcess.start(target.url)]);
  const init = await runCli(['node', 'start', target.id, '--from', source.id, '--db', target.url]);
  if (init.code !== 0) throw new Error(`node start failed (exit ${init.code}): ${init.stderr}`);
  return {
    source,
    target,
    agents,
    drop: async () => {
      await Promise.all(agents.map((a) => a.stop('SIGKILL')));
      await dropReplicationObjects([target, source]);
      await dropDatabase(target.cluster, target.name).catch(() => undefined);
      await dropDatabase(source.cluster, source.name).catch(() => undefined);
    },
  };
}

// What a refused command must leave as it was on the node: its state, its
// progress row, its verifies and divergence, its queue.
export async function nodeState(db: NodeDb): Promise<unknown> {
  const [row] = await query(
    db.url,
    `SELECT (SELECT json_agg(json_build_object('node_id', node_id, 'state', init_state) ORDER BY node_id) FROM steep_repl.nodes) AS states,
            (SELECT json_agg(json_build_object('phase', phase, 'reinit', reinit, 'cancel', cancel_requested_at)) FROM steep_repl.init_progress) AS progress,
            (SELECT count(*)::int FROM steep_repl.verify_runs) AS verify_runs,
            (SELECT json_agg(d ORDER BY d.schema_name, d.table_name) FROM steep_repl.node_divergence d) AS divergence,
            (SELECT count(*)::int FROM graphile_worker.jobs WHERE key LIKE 'verify:%' OR key LIKE 'init:%') AS jobs`,
  );
  return row;
}
