// The pg pool graphile-worker runs on. Its own pool (0.17) drops its error
// handlers before the pool has ended: a server that stops at that moment
// turns an idle client's error into an uncaught exception and kills the
// process (seen when the demo quit on a loaded machine). This pool keeps
// its handlers for good and is ended by whoever made it.
import { Pool } from 'pg';
import { clientConfig } from './connection';
import { Logger } from './log';

export function workerPool(connectionString: string | undefined, applicationName: string, logger: Logger): Pool {
  const pool = new Pool({ ...clientConfig(connectionString, applicationName), max: 10 });
  const onError = (err: Error) => logger.log('warn', 'worker.connection_error', { error: err.message });
  pool.on('error', onError);
  pool.on('connect', (client) => client.on('error', onError));
  return pool;
}

// A client a hung job still holds must not hold up the shutdown; the error
// handlers stay, so whatever happens to it later is only logged.
export async function endPool(pool: Pool, waitMs = 5000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([pool.end(), new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]);
  clearTimeout(timer);
}
