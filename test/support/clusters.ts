// Access to the suite's shared clusters, and databases of a test file's own.
import { Client } from 'pg';
import { clusterHandle, Cluster } from '../../lib/embedded-cluster';
import { installSchema } from '../../lib/install';
import { jsonLogger } from '../../lib/log';
import * as path from 'node:path';

function shared(name: 'a' | 'b'): Cluster {
  const port = Number(process.env[`STEEP_TEST_PG_${name.toUpperCase()}`]);
  const runDir = process.env.STEEP_TEST_RUN_DIR;
  if (!port || !runDir) throw new Error('the shared test clusters are not running (jest globalSetup did not run)');
  return clusterHandle(path.join(runDir, name), port);
}

export const clusterA = (): Cluster => shared('a');
export const clusterB = (): Cluster => shared('b');

export async function query<T extends Record<string, any> = any>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

let counter = 0;

// A new database on the cluster; its name carries the test file's tag so a
// failing run is easy to inspect.
export async function createDatabase(cluster: Cluster, tag: string): Promise<{ name: string; url: string }> {
  const name = `${tag}_${process.pid}_${++counter}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  await query(cluster.url(), `CREATE DATABASE ${name}`);
  return { name, url: cluster.url(name) };
}

export async function dropDatabase(cluster: Cluster, name: string): Promise<void> {
  await query(cluster.url(), `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

const quietLogger = jsonLogger({}, { write: () => true } as unknown as NodeJS.WritableStream);

export async function createNodeDatabase(cluster: Cluster, tag: string): Promise<{ name: string; url: string }> {
  const db = await createDatabase(cluster, tag);
  await installSchema(db.url, quietLogger);
  return db;
}
