// Installs what a node needs, idempotently: graphile-worker's job queue, the
// steep_repl tables from the committed migrations, then every function and
// view from migrations/functions and migrations/views.
import * as os from 'node:os';
import { Client } from 'pg';
import { migrate } from 'graphile-migrate';
import { clearAllPools } from 'graphile-migrate/dist/pgReal';
import { Logger as GraphileLogger, runMigrations } from 'graphile-worker';
import { makeLogFunction } from './graphile-log';
import { Logger } from './log';
import { connectTo, describeTarget, resolveConnectionString } from './connection';
import { routinesScript } from './schema-files';
import { ExitCode, exitCodeFor, SteepError } from './errors';
import { migrationsFolder } from './paths';
import { endPool, workerPool } from './worker-pool';

// graphile-migrate needs a URL; without one, build it from the PG* variables
// (no password in it: pg reads PGPASSWORD or pgpass itself).
export function installConnectionString(explicit?: string): string {
  const url = resolveConnectionString(explicit);
  if (url) return url;
  const user = process.env.PGUSER ?? os.userInfo().username;
  const host = process.env.PGHOST ?? 'localhost';
  const port = process.env.PGPORT ?? '5432';
  const db = process.env.PGDATABASE ?? user;
  return `postgres://${encodeURIComponent(user)}@${host.startsWith('/') ? '' : host}:${port}/${encodeURIComponent(db)}${
    host.startsWith('/') ? `?host=${encodeURIComponent(host)}` : ''
  }`;
}

// Concurrent installs into one database take turns: graphile-migrate refuses
// a second migrator outright ("Failed to get exclusive lock") and CREATE OR
// REPLACE of one function at once fails ("tuple concurrently updated"). A
// session advisory lock, taken before any migrator runs and held to the end,
// makes a second install wait (with a log line) and then find nothing to do.
const installLockSql = "SELECT pg_try_advisory_lock(hashtext('steep_repl.install')) AS locked";
const installLockWaitSql = "SELECT pg_advisory_lock(hashtext('steep_repl.install'))";

export async function installSchema(connectionString: string | undefined, logger: Logger): Promise<void> {
  const where = describeTarget(connectionString);
  // Fails with the address and a hint before the migrators' bare errors can.
  const lock = await connectTo(connectionString, 'steep-repl install');
  const url = installConnectionString(connectionString);
  const graphileLogger = new GraphileLogger(makeLogFunction(logger));
  const pgPool = workerPool(connectionString, 'steep-repl install', logger);
  try {
    const {
      rows: [{ locked }],
    } = await lock.query(installLockSql);
    if (!locked) {
      const since = Date.now();
      logger.log('info', 'install.waiting', { database: where, message: 'another steep-repl install is running in this database; waiting for it to finish' });
      await lock.query(installLockWaitSql);
      logger.log('info', 'install.resumed', { database: where, waited_ms: Date.now() - since });
    }
    await runMigrations({ pgPool, logger: graphileLogger });
    await migrate({ connectionString: url, migrationsFolder, logger: graphileLogger });
    await installRoutines(lock);
  } catch (err) {
    if (exitCodeFor(err) === ExitCode.connection) throw err;
    throw new SteepError(
      `installing steep_repl in ${where} failed: ${(err as Error).message}`,
      ExitCode.error,
      (err as { hint?: string }).hint ??
        'each migration runs in its own transaction, so the failed one left nothing behind; fix the cause and run install again',
    );
  } finally {
    // graphile-migrate keeps its pool 200 ms and calls process.exit when an
    // idle client of it errors: a database dropped or a server stopped right
    // after install would kill the calling process (a test, the demo).
    clearAllPools();
    await endPool(pgPool);
    // Ending the session releases the install lock.
    await lock.end().catch(() => undefined);
  }
}

// One transaction, on the session that holds the install lock: a routine
// that fails leaves the earlier definitions in place.
async function installRoutines(client: Client): Promise<void> {
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL check_function_bodies = off');
    await client.query(routinesScript());
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
