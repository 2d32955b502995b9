// Clusters and databases for the tests and the benchmarks: the suite's
// shared clusters, clusters a test file or a benchmark starts for itself,
// and databases of their own on either.
import { Client, DatabaseError } from 'pg';
import { claimRunDir, cleanStaleRuns, clusterHandle, Cluster, clusterRoot, createCluster, removeRun } from '../../lib/embedded-cluster';
import { installSchema } from '../../lib/install';
import { jsonLogger } from '../../lib/log';
import { runCli } from './processes';
import * as path from 'node:path';

function shared(name: 'a' | 'b'): Cluster {
  const port = Number(process.env[`STEEP_TEST_PG_${name.toUpperCase()}`]);
  const runDir = process.env.STEEP_TEST_RUN_DIR;
  if (!port || !runDir) throw new Error('the shared test clusters are not running (jest globalSetup did not run)');
  return clusterHandle(path.join(runDir, name), port);
}

export const clusterA = (): Cluster => shared('a');
export const clusterB = (): Cluster => shared('b');

export interface OwnClusters<Name extends string> {
  runDir: string;
  clusters: Record<Name, Cluster>;
  remove(): Promise<void>;
}

export interface OwnClusterOptions<Name extends string> {
  // the major version of some of them (15: Debian's binaries); the
  // embedded PostgreSQL for the others
  versions?: Partial<Record<Name, number>>;
}

// Clusters under clusterRoot(rootName), started in parallel, after stopping
// those a killed run of the same owner left there.
export async function startOwnClusters<Name extends string>(
  rootName: string,
  names: readonly Name[],
  options: OwnClusterOptions<Name> = {},
): Promise<OwnClusters<Name>> {
  const root = clusterRoot(rootName);
  await cleanStaleRuns(root);
  const runDir = claimRunDir(root);
  try {
    // all settled before a failure is thrown, so removeRun finds every server that started
    const settled = await Promise.allSettled(names.map((name) => createCluster(path.join(runDir, name), undefined, { version: options.versions?.[name] })));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const started = settled.map((r) => (r as PromiseFulfilledResult<Cluster>).value);
    const clusters = Object.fromEntries(names.map((name, i) => [name, started[i]])) as Record<Name, Cluster>;
    return { runDir, clusters, remove: () => removeRun(runDir) };
  } catch (err) {
    await removeRun(runDir);
    throw err;
  }
}

export async function withClient<T>(url: string, use: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

export async function query<T extends Record<string, any> = any>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  return withClient(url, async (client) => (await client.query<T>(sql, params)).rows);
}

// The error a statement is refused with; one that succeeds fails the test.
export async function refusal(url: string, sql: string, params: unknown[] = []): Promise<DatabaseError> {
  try {
    await query(url, sql, params);
  } catch (err) {
    return err as DatabaseError;
  }
  throw new Error(`not refused: ${sql} ${JSON.stringify(params)}`);
}

let counter = 0;

// A new database on the cluster; its name carries the tag (a test file's, a
// benchmark's) so a failing run is easy to inspect.
export async function createDatabase(cluster: Cluster, tag: string): Promise<{ name: string; url: string }> {
  const name = `${tag}_${process.pid}_${++counter}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  await query(cluster.url(), `CREATE DATABASE ${name}`);
  return { name, url: cluster.url(name) };
}

export async function dropDatabase(cluster: Cluster, name: string): Promise<void> {
  await query(cluster.url(), `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

const quietLogger = jsonLogger({}, { write: () => true } as unknown as NodeJS.WritableStream);

export interface NodeDatabaseOptions {
  // 'cli' where this process later stops the server: graphile-migrate keeps
  // an in-process pool whose error handler exits the process when it does.
  installer?: 'library' | 'cli';
}

// A new database with steep_repl installed.
export async function createNodeDatabase(cluster: Cluster, tag: string, options: NodeDatabaseOptions = {}): Promise<{ name: string; url: string }> {
  const db = await createDatabase(cluster, tag);
  if (options.installer === 'cli') {
    const install = await runCli(['install', '--db', db.url]);
    if (install.code !== 0) throw new Error(`install into ${db.name} failed (exit ${install.code}): ${install.stderr}`);
  } else {
    await installSchema(db.url, quietLogger);
  }
  return db;
}
