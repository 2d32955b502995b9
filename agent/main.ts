// The agent of one node: runs the jobs SQL functions enqueue, heartbeats its
// node and aborts a job when asked on steep_repl_cancel. It owns no state;
// killed at any moment and started again, it resumes from the tables.
import createSubscriber from 'pg-listen';
import { run, runMigrations, Runner, Logger as GraphileLogger, TaskList, Task } from 'graphile-worker';
import { clientConfig, connectTo, describeTarget } from '../lib/connection';
import { SteepError } from '../lib/errors';
import { makeLogFunction } from '../lib/graphile-log';
import { installConnectionString } from '../lib/install';
import { Logger } from '../lib/log';
import { CancellationRegistry, CancelRequest } from './cancellation';
import { SteepTask } from './task';
import { tasks as defaultTasks } from './tasks';

export interface AgentOptions {
  connectionString?: string;
  logger: Logger;
  concurrency?: number;
  heartbeatMs?: number;
  tasks?: Record<string, SteepTask>;
}

export interface Agent {
  stop(reason?: string): Promise<void>;
  // Settles when the agent has stopped, by stop() or by a fatal error.
  done: Promise<void>;
}

// One agent per database: a session-level advisory lock, released by the
// server when the agent's session ends, also when the agent is killed.
const agentLockSql = "SELECT pg_try_advisory_lock(hashtext('steep_repl.agent')) AS locked";

export async function startAgent(options: AgentOptions): Promise<Agent> {
  const { logger } = options;
  const where = describeTarget(options.connectionString);
  const control = await connectTo(options.connectionString, 'steep-repl agent');
  const stopSteps: Array<() => Promise<unknown>> = [() => control.end()];
  const stopAll = async () => {
    for (const step of stopSteps.reverse()) await step().catch(() => undefined);
  };
  try {
    const {
      rows: [{ locked }],
    } = await control.query(agentLockSql);
    if (!locked) {
      throw new SteepError(`another steep-repl agent is already running for ${where}`);
    }
    const {
      rows: [{ installed }],
    } = await control.query("SELECT to_regclass('steep_repl.nodes') IS NOT NULL AS installed");
    if (!installed) {
      throw new SteepError(`steep_repl is not installed in ${where}`, undefined, `run: steep-repl install --db <url of ${where}>`);
    }
    const localNode = (await control.query('SELECT steep_repl.local_node_id() AS id')).rows[0].id as string | null;
    if (!localNode) {
      logger.log('warn', 'agent.no_local_node', {
        database: where,
        hint: 'register this database with steep-repl node register <id> ... --local to heartbeat it',
      });
    }

    const cancellation = new CancellationRegistry();
    const subscriber = createSubscriber(clientConfig(options.connectionString, 'steep-repl agent listen'), {
      retryTimeout: Infinity,
      retryInterval: (attempt) => Math.min(250 * 2 ** attempt, 5000),
    });
    subscriber.events.on('error', (err) => logger.log('error', 'agent.listen_error', { error: err.message }));
    subscriber.notifications.on('steep_repl_cancel', (request: CancelRequest) => {
      const aborted = cancellation.cancel(request);
      logger.log('info', 'agent.cancel_requested', { ...request, aborted_jobs: aborted });
    });
    await subscriber.connect();
    await subscriber.listenTo('steep_repl_cancel');
    stopSteps.push(() => subscriber.close());

    const workerUrl = installConnectionString(options.connectionString);
    const graphileLogger = new GraphileLogger(makeLogFunction(logger));
    await runMigrations({ connectionString: workerUrl, logger: graphileLogger });

    // Jobs locked by an agent that died stay locked for hours; holding the
    // agent lock proves no other agent runs them, so they can be freed now.
    const stale = await control.query(
      `WITH stale AS (SELECT array_agg(DISTINCT locked_by) AS workers, count(*) AS jobs
                      FROM graphile_worker._private_jobs WHERE locked_by IS NOT NULL)
       SELECT graphile_worker.force_unlock_workers(workers), jobs FROM stale WHERE jobs > 0`,
    );
    const unlockedJobs = Number(stale.rows[0]?.jobs ?? 0);

    const runner = await run({
      connectionString: workerUrl,
      concurrency: options.concurrency ?? 4,
      noHandleSignals: true,
      pollInterval: 1000,
      taskList: wrapTasks(options.tasks ?? defaultTasks, cancellation, logger, options.connectionString),
      logger: graphileLogger,
    });
    stopSteps.push(() => runner.stop());
    watchJobs(runner, logger);

    const heartbeat = async () => {
      try {
        await control.query('SELECT steep_repl.heartbeat()');
      } catch (err) {
        logger.log('warn', 'agent.heartbeat_failed', { error: (err as Error).message });
      }
    };
    await heartbeat();
    const timer = setInterval(heartbeat, options.heartbeatMs ?? 5000);
    stopSteps.push(async () => clearInterval(timer));

    logger.log('info', 'agent.started', {
      database: where,
      node_id: localNode,
      pid: process.pid,
      tasks: Object.keys(options.tasks ?? defaultTasks),
      unlocked_stale_jobs: unlockedJobs,
    });

    let stopping: Promise<void> | undefined;
    const stop = (reason = 'stop requested') => {
      stopping ??= (async () => {
        logger.log('info', 'agent.stopping', { reason });
        await stopAll();
        logger.log('info', 'agent.stopped', { reason });
      })();
      return stopping;
    };
    control.on('error', (err) => {
      logger.log('error', 'agent.connection_lost', { error: err.message });
      void stop('lost its database connection');
    });
    const done = Promise.race([runner.promise, new Promise<void>((resolve) => control.once('end', resolve))]).then(
      () => stop('runner ended'),
    );
    return { stop, done };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function wrapTasks(
  steepTasks: Record<string, SteepTask>,
  cancellation: CancellationRegistry,
  logger: Logger,
  connectionString?: string,
): TaskList {
  const list: TaskList = {};
  for (const [name, steepTask] of Object.entries(steepTasks)) {
    const task: Task = async (payload, helpers) => {
      const jobId = String(helpers.job.id);
      const body = (payload ?? {}) as Record<string, unknown>;
      const cancel = cancellation.register(jobId, typeof body.node_id === 'string' ? body.node_id : undefined);
      try {
        await steepTask(body, { jobId, cancel, shutdown: helpers.abortSignal, logger, connectionString, helpers });
      } finally {
        cancellation.release(jobId);
      }
    };
    list[name] = task;
  }
  return list;
}

function watchJobs(runner: Runner, logger: Logger): void {
  runner.events.on('job:start', ({ job }) =>
    logger.log('info', 'job.started', { job_id: job.id, task: job.task_identifier, attempt: job.attempts }),
  );
  runner.events.on('job:success', ({ job }) =>
    logger.log('info', 'job.completed', { job_id: job.id, task: job.task_identifier }),
  );
  runner.events.on('job:error', ({ job, error }) =>
    logger.log('error', 'job.failed', {
      job_id: job.id,
      task: job.task_identifier,
      attempt: job.attempts,
      max_attempts: job.max_attempts,
      error: (error as Error)?.message ?? String(error),
    }),
  );
}
