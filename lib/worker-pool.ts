// The pg pool graphile-worker runs on. Its own pool (0.17) drops its error
// handlers before the pool has ended: a server that stops at that moment
// turns an idle client's error into an uncaught exception and kills the
// process (seen when the demo quit on a loaded machine). This pool keeps
// its handlers for good and is ended by whoever made it.
import { Pool, PoolClient } from 'pg';
import { clientConfig } from './connection';
import { Logger } from './log';
import { backoff } from './notifications';

export interface WorkerPoolOptions {
  // How long a new connection is retried while the server is away (refused,
  // starting up, shutting down). graphile-worker 0.17 retries none of these:
  // a job that ends while the server restarts records its outcome with a
  // rejection nobody handles (failJob/completeJob are not awaited), so the
  // process would die. The agent waits as long as it waits for its own session.
  waitForServerMs?: number;
  // Ends the waiting at once (the agent stops): the attempt fails as it would have.
  signal?: AbortSignal;
}

// A server that is restarting, not one that refuses this role or database.
export function isServerAway(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'EPIPE', '57P01', '57P02', '57P03'].includes(e?.code ?? '') ||
    /Connection terminated|timeout exceeded when trying to connect|timeout expired/i.test(e?.message ?? '')
  );
}

class PatientPool extends Pool {
  private wake = new Set<() => void>();

  constructor(
    config: ConstructorParameters<typeof Pool>[0],
    private readonly waitForServerMs: number,
    private readonly signal?: AbortSignal,
  ) {
    super(config);
    signal?.addEventListener('abort', () => this.wake.forEach((wake) => wake()), { once: true });
  }

  // Both forms pg-pool offers: pool.query and graphile-worker's listener use the callback.
  connect(): Promise<PoolClient>;
  connect(callback: (err: Error | undefined, client: PoolClient | undefined, done: (release?: unknown) => void) => void): void;
  connect(callback?: (err: Error | undefined, client: PoolClient | undefined, done: (release?: unknown) => void) => void): Promise<PoolClient> | void {
    const attempt = this.connectWaiting();
    if (!callback) return attempt;
    attempt.then(
      (client) => callback(undefined, client, (release?: unknown) => client.release(release as Error | boolean | undefined)),
      (err: Error) => callback(err, undefined, () => undefined),
    );
  }

  end(): Promise<void>;
  end(callback: () => void): void;
  end(callback?: () => void): Promise<void> | void {
    this.wake.forEach((wake) => wake());
    return callback ? super.end(callback) : super.end();
  }

  private async connectWaiting(): Promise<PoolClient> {
    const deadline = Date.now() + this.waitForServerMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await super.connect();
      } catch (err) {
        if (this.ending || this.signal?.aborted || !isServerAway(err) || Date.now() >= deadline) throw err;
        await new Promise<void>((resolve) => {
          if (this.signal?.aborted) return resolve();
          const wake = () => {
            clearTimeout(timer);
            this.wake.delete(wake);
            resolve();
          };
          const timer = setTimeout(wake, Math.min(backoff(attempt), Math.max(0, deadline - Date.now())));
          this.wake.add(wake);
        });
      }
    }
  }
}

export function workerPool(connectionString: string | undefined, applicationName: string, logger: Logger, options: WorkerPoolOptions = {}): Pool {
  const pool = new PatientPool({ ...clientConfig(connectionString, applicationName), max: 10 }, options.waitForServerMs ?? 0, options.signal);
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
