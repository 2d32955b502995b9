// What bench/verify.ts and bench/reinit.ts share: a source node with a
// dataset and a target node synchronized with it through a steep-repl init
// (direct, through the target's agent, which keeps running: verify and
// reinit are jobs on it), the node's state, waiting for a node to leave
// a state, and the agent's log kept.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cluster } from '../lib/embedded-cluster';
import { startInit } from '../lib/sql/startInit';
import { query, withClient } from '../test/support/clusters';
import { followInit } from '../test/support/init-follower';
import { createNodeDb, NodeDb, registerPair } from '../test/support/node-pair';
import { AgentProcess } from '../test/support/processes';
import { waitUntil } from '../test/support/wait';
import { buildDataset, contentSums, Dataset, differences, MiB, schemaSql, TableSpec } from './support-copy';

export interface SyncedPair {
  data: Dataset;
  target: NodeDb;
  // the target's agent, running
  agent: AgentProcess;
  // seconds: the dataset generated and hashed, the init until synchronized
  generated: number;
  synchronized: number;
}

// The source (its dataset built), the target node with the schema,
// registered with each other, the target's agent started and a direct init
// (parallel 2, the big tables split) run to synchronized; the target's
// content checked against the source's, then VACUUM (FREEZE, ANALYZE) on
// it: no timed scan pays for hint bits, and reltuples is set.
export async function synchronizedPair(
  clusters: { source: Cluster; target: Cluster },
  tag: string,
  tables: TableSpec[],
  agents: Set<AgentProcess>,
  agentEnv: Record<string, string | undefined> = {},
): Promise<SyncedPair> {
  const t0 = Date.now();
  const data = await buildDataset(clusters.source, `${tag}_src`, tables);
  const generated = (Date.now() - t0) / 1000;
  const target = await createNodeDb(clusters.target, `${tag}_tgt`, `${tag}_tgt`, { installer: 'cli' });
  await query(target.url, schemaSql(tables));
  await registerPair(target, data.source);
  const agent = await AgentProcess.start(target.url, [], agentEnv);
  agents.add(agent);
  const following = await followInit(target.url, target.id);
  const t1 = Date.now();
  try {
    await withClient(target.url, (client) =>
      startInit(client, { target: target.id, source: data.source.id, method: 'direct', options: { parallel: 2, split_tables_larger_than: '64MB' } }),
    );
    await following.reached('synchronized', 60 * 60_000);
  } finally {
    await following.close();
  }
  const synchronized = (Date.now() - t1) / 1000;
  const bad = differences(data.sums, await contentSums(target.url, tables.map((t) => t.name)));
  if (bad.length) throw new Error(`the init left the target different from the source: ${bad.join('; ')}`);
  await query(target.url, 'VACUUM (FREEZE, ANALYZE)');
  console.log(
    `target ${target.id}: synchronized by a direct init in ${synchronized.toFixed(1)} s (${(data.bytes / MiB / synchronized).toFixed(0)} MB/s), content equal, vacuumed`,
  );
  return { data, target, agent, generated, synchronized };
}

export async function nodeState(db: NodeDb): Promise<string> {
  const [{ state }] = await query(db.url, 'SELECT init_state AS state FROM steep_repl.nodes WHERE node_id = $1', [db.id]);
  return state;
}

// Every function of names is installed in db (the feature a benchmark
// measures may not exist yet): the missing ones, else none.
export async function missingFunctions(url: string, names: readonly string[]): Promise<string[]> {
  const rows = await query(url, "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'steep_repl' AND p.proname = ANY($1)", [
    names,
  ]);
  const found = new Set(rows.map((r) => r.proname));
  return names.filter((n) => !found.has(n));
}

// Polls every `everyMs` until check() gives a value; the time it did, in ms since the epoch.
export async function pollUntil<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 50): Promise<{ value: T; at: number }> {
  let at = 0;
  const value = await waitUntil(
    what,
    async () => {
      const v = await check();
      at = Date.now();
      return v;
    },
    timeoutMs,
    everyMs,
  );
  return { value: value as T, at };
}

export const secondsSince = (from: number): number => (Date.now() - from) / 1000;

// --logs <dir>: the target agent's lines in <dir>/target-agent.log.
export function saveAgentLog(logDir: string | undefined, agent: AgentProcess): void {
  if (!logDir) return;
  fs.mkdirSync(logDir, { recursive: true });
  fs.writeFileSync(path.join(logDir, 'target-agent.log'), agent.raw.join('\n') + '\n');
}
