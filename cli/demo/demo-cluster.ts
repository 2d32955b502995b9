// The demo's two nodes: embedded PostgreSQL 18 servers with sample data on
// node_a, steep_repl installed and both nodes registered on both, their
// agents running in this process and logging to files in the run directory.
// stop() leaves nothing running; a run that was killed is cleaned by the next.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { Agent, startAgent } from '../../agent/main';
import { connectTo, escapeIdentifier } from '../../lib/connection';
import {
  claimRunDir,
  cleanStaleRuns,
  Cluster,
  clusterRoot,
  createCluster,
  removeRun,
  removeRunSync,
  stopCluster,
} from '../../lib/embedded-cluster';
import { installSchema } from '../../lib/install';
import { jsonLogger, Logger } from '../../lib/log';
import { packageRoot } from '../../lib/paths';
import { registerNode } from '../../lib/sql/registerNode';
import { startInit } from '../../lib/sql/startInit';

export const demoDatabase = 'steep_demo';

export interface DemoNode {
  id: string;
  cluster: Cluster;
  url: string;
}

export interface Demo {
  runDir: string;
  source: DemoNode;
  target: DemoNode;
  // Sizes of the sample data on the source.
  sample: { bytes: number; rows: number };
  stop(): Promise<void>;
}

export interface DemoOptions {
  // Approximate size of the sample data in MB.
  scaleMb: number;
  // Progress lines for the person waiting.
  say(text: string): void;
}

const readSql = (name: string) => fs.readFileSync(path.join(packageRoot, 'cli', 'demo', name), 'utf8');

// Row counts that give about scaleMb of heap and indexes, most of it in order_lines.
export function sampleSizes(scaleMb: number) {
  const orders = Math.max(200, Math.round(scaleMb * 1650));
  return {
    customers: Math.max(100, Math.round(orders / 20)),
    products: Math.min(5000, Math.max(100, Math.round(orders / 50))),
    orders,
    lines_per_order: 4,
  };
}

async function withClient<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await connectTo(url, 'steep-repl demo');
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function fillSample(url: string, scaleMb: number): Promise<{ bytes: number; rows: number }> {
  return withClient(url, async (client) => {
    for (const [name, value] of Object.entries(sampleSizes(scaleMb))) {
      await client.query('SELECT set_config($1, $2, false)', [`steep_demo.${name}`, String(value)]);
    }
    await client.query(readSql('sample-data.sql'));
    const { rows } = await client.query(
      `SELECT sum(pg_total_relation_size(c.oid))::float8 AS bytes, sum(c.reltuples)::float8 AS rows
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'shop' AND c.relkind = 'r'`,
    );
    return { bytes: rows[0].bytes, rows: rows[0].rows };
  });
}

export async function startDemo(options: DemoOptions): Promise<Demo> {
  const { say } = options;
  const root = clusterRoot('demo');
  const stale = await cleanStaleRuns(root);
  if (stale.length) say(`cleaned ${stale.length} demo run(s) left by a killed process`);
  const runDir = claimRunDir(root);
  // If this process dies without stop(), its servers go with it.
  const onExit = () => removeRunSync(runDir);
  process.once('exit', onExit);

  const agents: Agent[] = [];
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      // A job that does not notice the shutdown must not keep the servers up.
      await Promise.race([
        Promise.all(agents.map((a) => a.stop('demo stopping'))),
        new Promise((resolve) => setTimeout(resolve, 10000).unref()),
      ]);
      await Promise.all(['node_a', 'node_b'].map((id) => stopCluster(path.join(runDir, id)).catch(() => undefined)));
      await removeRun(runDir);
      process.off('exit', onExit);
    })());

  try {
    say('starting two PostgreSQL 18 servers');
    const [a, b] = await Promise.all([createCluster(path.join(runDir, 'node_a')), createCluster(path.join(runDir, 'node_b'))]);
    const nodes: DemoNode[] = [
      { id: 'node_a', cluster: a, url: a.url(demoDatabase) },
      { id: 'node_b', cluster: b, url: b.url(demoDatabase) },
    ];
    for (const node of nodes) {
      await withClient(node.cluster.url(), (c) => c.query(`CREATE DATABASE ${escapeIdentifier(demoDatabase)}`));
      await withClient(node.url, (c) => c.query(readSql('sample-schema.sql')));
    }
    say(`filling node_a with about ${options.scaleMb} MB of sample data`);
    const sample = await fillSample(nodes[0].url, options.scaleMb);

    say('installing steep_repl on both nodes');
    const installLog = fileLogger(runDir, 'install.log', {});
    const installs = await Promise.allSettled(nodes.map((n) => installSchema(n.url, installLog)));
    for (const result of installs) if (result.status === 'rejected') throw result.reason;
    for (const here of nodes) {
      await withClient(here.url, async (client) => {
        for (const node of nodes) {
          await registerNode(client, {
            node_id: node.id,
            host: node.cluster.host,
            port: node.cluster.port,
            dbname: demoDatabase,
            user: node.cluster.user,
            priority: node.id === 'node_a' ? 60 : 50,
            is_local: node.id === here.id,
          });
        }
      });
    }

    say('starting the agents (logs in the run directory)');
    for (const node of nodes) {
      agents.push(
        await startAgent({
          connectionString: node.url,
          logger: fileLogger(runDir, `agent-${node.id}.log`, { component: 'agent', node: node.id }),
          heartbeatMs: 2000,
        }),
      );
    }
    return { runDir, source: nodes[0], target: nodes[1], sample, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export async function startDemoInit(demo: Demo): Promise<void> {
  await withClient(demo.target.url, (c) => startInit(c, { target: demo.target.id, source: demo.source.id }));
}

function fileLogger(runDir: string, name: string, base: Record<string, unknown>): Logger {
  return jsonLogger(base, fs.createWriteStream(path.join(runDir, name), { flags: 'a' }));
}
