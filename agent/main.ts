// The agent of one node: runs the jobs SQL functions enqueue, heartbeats its
// node and aborts a job when asked on steep_repl_cancel. It owns no state;
// killed at any moment and started again, it resumes from the tables.
import { Client } from 'pg';
import { quoteIdent } from '../lib/identifiers';
import createSubscriber from 'pg-listen';
import { run, runMigrations, Runner, Logger as GraphileLogger, TaskList, Task } from 'graphile-worker';
import { clientConfig, connectTo, describeTarget } from '../lib/connection';
import { ExitCode, notInstalledError, SteepError } from '../lib/errors';
import { makeLogFunction } from '../lib/graphile-log';
import { endPool, workerPool } from '../lib/worker-pool';
import { Logger, LogLevel } from '../lib/log';
import { backoff, EventNotification, StateNotification } from '../lib/notifications';
import { heartbeat as heartbeatNode } from '../lib/sql/heartbeat';
import { localNodeId } from '../lib/sql/localNodeId';
import { CancellationRegistry, CancelRequest } from './cancellation';
import { HealthMetrics } from './health/metrics';
import { ReplicationWatch } from './health/watch';
import { SteepTask } from './task';
import { tasks as defaultTasks } from './tasks';

export interface AgentOptions {
  connectionString?: string;
  logger: Logger;
  concurrency?: number;
  heartbeatMs?: number;
  // How long the agent keeps trying to get its database back before it
  // gives up (exit 6); a restart of the server takes seconds.
  reconnectTimeoutMs?: number;
  tasks?: Record<string, SteepTask>;
  // The watch of replication health (agent/health/watch.ts); on unless false.
  healthWatch?: boolean;
  // Set from each round of the watch; the caller serves them (--metrics-port).
  metrics?: HealthMetrics;
  // where they are served, for agent.started
  metricsUrl?: string;
}

export interface Agent {
  stop(reason?: string): Promise<void>;
  // Resolves when stop() has finished; rejects with the error that made the
  // agent stop on its own (lost database, another agent, runner failure).
  done: Promise<void>;
  // From the first step of stop(): what fails after it is part of stopping.
  readonly stopping: boolean;
}

// One agent per database: a session-level advisory lock, released by the
// server when the agent's session ends, also when the agent is killed.
const agentLockSql = "SELECT pg_try_advisory_lock(hashtext('steep_repl.agent')) AS locked";
// pg_stat_activity shows another role's session only in part (pid, role,
// application; client and start time are NULL) unless this role has
// pg_read_all_stats: the message says what it could see.
const agentLockHolderSql = `
  SELECT a.pid, a.usename AS role, nullif(a.application_name, '') AS application_name,
         CASE WHEN a.backend_start IS NULL THEN NULL ELSE coalesce(host(a.client_addr), 'local socket') END AS client,
         a.backend_start, current_user AS me
  FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
  WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext('steep_repl.agent')::bigint`;
// What this role may not do that an agent does: read and write the tables of
// steep_repl and of the job queue. Asked of pg_catalog only, which every role
// reads (steep_repl's own functions are out of reach without USAGE on it).
const missingRightsSql = `
  SELECT current_user AS role,
         coalesce(array_agg(format('USAGE on schema %I', n.nspname) ORDER BY n.nspname) FILTER (WHERE NOT has_schema_privilege(n.oid, 'USAGE')), '{}') AS schemas,
         coalesce((SELECT array_agg(format('%I.%I', tn.nspname, c.relname) ORDER BY tn.nspname, c.relname)
                   FROM pg_class c JOIN pg_namespace tn ON tn.oid = c.relnamespace
                   WHERE tn.nspname IN ('steep_repl', 'graphile_worker') AND c.relkind IN ('r', 'p')
                     AND NOT has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE')), '{}') AS tables
  FROM pg_namespace n WHERE n.nspname IN ('steep_repl', 'graphile_worker')`;
const installedSql = `
  SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'steep_repl' AND c.relname = 'nodes') AS installed`;

// What the role lacks for running an agent, in words; undefined when nothing.
async function missingRights(client: Client): Promise<string | undefined> {
  const {
    rows: [row],
  } = await client.query<{ role: string; schemas: string[]; tables: string[] }>(missingRightsSql);
  const lacks = [...row.schemas];
  if (row.tables.length) {
    const names = row.tables.length > 5 ? `${row.tables.slice(0, 5).join(', ')} and ${row.tables.length - 5} more` : row.tables.join(', ');
    lacks.push(`SELECT, INSERT, UPDATE, DELETE on ${row.tables.length} table(s): ${names}`);
  }
  return lacks.length ? `role ${quoteIdent(row.role)} lacks ${lacks.join('; ')}` : undefined;
}

const rightsHint =
  'run the agent as the role that ran steep-repl install (the database owner) or a superuser; ' +
  'it also creates subscriptions and replication origins (see "Roles" in docs/init.md)';

async function takeAgentLock(client: Client, where: string): Promise<void> {
  const {
    rows: [{ locked }],
  } = await client.query(agentLockSql);
  if (locked) return;
  const {
    rows: [holder],
  } = await client.query(agentLockHolderSql);
  const lacking = await missingRights(client);
  let by = '';
  if (holder?.pid) {
    const seen = [`backend pid ${holder.pid}`];
    if (holder.role) seen.push(`role ${quoteIdent(holder.role)}`);
    if (holder.application_name) seen.push(`application ${JSON.stringify(holder.application_name)}`);
    if (holder.backend_start) seen.push(`from ${holder.client}`, `since ${holder.backend_start.toISOString()}`);
    else seen.push(`its client and start time are hidden from role ${quoteIdent(holder.me)}, which lacks pg_read_all_stats`);
    by = ` (its session: ${seen.join(', ')})`;
  }
  throw new SteepError(
    `another steep-repl agent is already running for ${where}${by}${lacking ? `; besides, ${lacking}, so it could not run one` : ''}`,
    ExitCode.error,
    lacking ? `one agent per database runs the jobs; leave the other one running, or stop it and ${rightsHint}` : 'one agent per database runs the jobs; stop the other one first, or leave it running',
  );
}

// How long agent.started waits for the watch's first round.
const firstRoundWaitMs = 2000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startAgent(options: AgentOptions): Promise<Agent> {
  const { logger } = options;
  const where = describeTarget(options.connectionString);
  const reconnectTimeoutMs = options.reconnectTimeoutMs ?? 60000;
  const heartbeatMs = options.heartbeatMs ?? 5000;
  const tasks = options.tasks ?? defaultTasks;
  let control = await connectTo(options.connectionString, 'steep-repl agent');
  let stopping: Promise<void> | undefined;
  let fatal: Error | undefined;
  // Set once the agent runs; before that a failure throws from startAgent.
  let fail = (err: Error): void => void logger.log('error', 'agent.early_failure', { error: err.message });
  const shutdown = new AbortController();
  const stopSteps: Array<() => Promise<unknown>> = [() => control.end()];
  const stopAll = async () => {
    for (const step of stopSteps.reverse()) await step().catch(() => undefined);
  };
  try {
    await takeAgentLock(control, where);
    const {
      rows: [{ installed }],
    } = await control.query(installedSql);
    if (!installed) throw notInstalledError(where);
    const lacking = await missingRights(control);
    if (lacking) throw new SteepError(`the agent cannot run jobs in ${where}: ${lacking}`, ExitCode.error, rightsHint);
    const localNode = await localNodeId(control);
    if (!localNode) {
      logger.log('warn', 'agent.no_local_node', {
        database: where,
        hint: 'register this database with steep-repl node register <id> ... --local to heartbeat it',
      });
    }

    const cancellation = new CancellationRegistry();
    const subscriber = createSubscriber(clientConfig(options.connectionString, 'steep-repl agent listen'), {
      // pg-listen's retry loop outlives close(); the same limit as the agent's own session ends it.
      retryTimeout: reconnectTimeoutMs,
      retryInterval: backoff,
    });
    let listening = false;
    subscriber.events.on('error', (err) => {
      if (stopping) return;
      logger.log('error', 'agent.listen_error', { error: err.message });
      // pg-listen does not retry a failed re-LISTEN: without it no cancel arrives.
      if (/^Re-initializing/.test(err.message)) {
        fail(new SteepError(`the cancel listener on ${where} could not be restored: ${err.message}`, ExitCode.connection));
      }
    });
    // Cancel requests sent while the listener was away are lost; a DBA repeats them.
    subscriber.events.on('reconnect', (attempt) => stopping || logger.log('warn', 'agent.listen_reconnecting', { attempt }));
    subscriber.events.on('connected', () => {
      if (listening) logger.log('info', 'agent.listen_reconnected', { database: where });
      listening = true;
    });
    subscriber.notifications.on('steep_repl_cancel', (request: CancelRequest) => {
      const aborted = cancellation.cancel(request);
      logger.log('info', 'agent.cancel_requested', { ...request, aborted_jobs: aborted });
    });
    // Every event and transition of this database becomes one log line, also
    // those SQL emits on its own (start_init from psql, progress triggers).
    subscriber.notifications.on('steep_repl_events', (event: EventNotification) => {
      logger.log(levelOf(event.event), event.event, { node_id: event.node_id, audit_id: event.audit_id, ...event.details });
    });
    subscriber.notifications.on('steep_repl_state', (change: StateNotification) => {
      logger.log(change.to === 'failed' ? 'warn' : 'info', 'init.state_change', { ...change });
    });
    await subscriber.connect();
    await subscriber.listenTo('steep_repl_cancel');
    await subscriber.listenTo('steep_repl_events');
    await subscriber.listenTo('steep_repl_state');
    stopSteps.push(() => subscriber.close());

    // While the database restarts, the job queue's connections wait for it as
    // the agent's own session does, so a job that ends meanwhile records its outcome.
    const pgPool = workerPool(options.connectionString, 'steep-repl agent worker', logger, {
      waitForServerMs: reconnectTimeoutMs,
      signal: shutdown.signal,
    });
    stopSteps.push(() => endPool(pgPool));
    // the watch's stop goes here: after the runner's, before the pool's end
    const watchStopAt = stopSteps.length;
    const graphileLogger = new GraphileLogger(makeLogFunction(logger));
    await runMigrations({ pgPool, logger: graphileLogger });

    // Jobs locked by an agent that died stay locked for hours; holding the
    // agent lock proves no other agent runs them, so they can be freed now.
    const stale = await control.query(
      `WITH stale AS (SELECT array_agg(DISTINCT locked_by) AS workers, count(*) AS jobs
                      FROM graphile_worker._private_jobs WHERE locked_by IS NOT NULL)
       SELECT graphile_worker.force_unlock_workers(workers), jobs FROM stale WHERE jobs > 0`,
    );
    const unlockedJobs = Number(stale.rows[0]?.jobs ?? 0);

    const concurrency = options.concurrency ?? 4;
    const taskList = wrapTasks(tasks, cancellation, shutdown.signal, logger, options.connectionString);
    let reconnecting = false;
    let replacingRunner = false;
    const startRunner = async (): Promise<Runner> => {
      const started = await run({
        pgPool,
        concurrency,
        noHandleSignals: true,
        pollInterval: 1000,
        taskList,
        logger: graphileLogger,
      });
      watchJobs(started, logger, shutdown.signal);
      // graphile-worker 0.17 caches a failed lookup of its task ids for good:
      // a runner whose database went away right after it started never
      // fetches a job again. Polls that keep failing while the agent's own
      // session works mean that runner is stuck; a new one is not.
      let failedPolls = 0;
      started.events.on('worker:getJob:error', () => {
        if (++failedPolls >= 3 * concurrency && !reconnecting && !replacingRunner && !stopping) void replaceRunner();
      });
      started.events.on('worker:getJob:empty', () => (failedPolls = 0));
      started.events.on('job:start', () => (failedPolls = 0));
      started.promise.then(
        () => started === runner && !replacingRunner && fail(new SteepError('the job runner stopped unexpectedly')),
        (err) =>
          started === runner && !replacingRunner && fail(new SteepError(`the job runner failed: ${(err as Error).message}`)),
      );
      return started;
    };
    const replaceRunner = async (): Promise<void> => {
      replacingRunner = true;
      try {
        await control.query('SELECT 1');
        logger.log('warn', 'agent.runner_restarting', { reason: 'the job runner kept failing to fetch jobs' });
        await runner.stop().catch(() => undefined);
        if (stopping) return;
        runner = await startRunner();
        logger.log('info', 'agent.runner_restarted', {});
        replacingRunner = false;
      } catch (err) {
        logger.log('warn', 'agent.runner_restart_failed', { error: (err as Error).message, retry_in_ms: 2000 });
        // Until it succeeds no job runs; the lost-connection timeout ends the wait.
        if (!stopping) setTimeout(() => void replaceRunner(), 2000);
      }
    };
    let runner = await startRunner();
    stopSteps.push(() => runner.stop());
    // Running tasks see the shutdown at once, not after graphile-worker's 5 s grace.
    stopSteps.push(async () => shutdown.abort(new Error('the agent is shutting down')));

    const heartbeat = async () => {
      if (reconnecting) return;
      try {
        await heartbeatNode(control);
      } catch (err) {
        logger.log('warn', 'agent.heartbeat_failed', { error: (err as Error).message });
      }
    };
    await heartbeat();
    const timer = setInterval(heartbeat, heartbeatMs);
    stopSteps.push(async () => clearInterval(timer));

    // After the runner, with a session of its own: a slow round (a source
    // that does not answer) holds up neither the heartbeat nor a job. It
    // stops once the runner has: a running job sees the shutdown at once,
    // and the job queue records how its jobs ended before the pool goes.
    const healthWatch = options.healthWatch !== false;
    let firstRound: Promise<void> = Promise.resolve();
    if (healthWatch) {
      const watch = ReplicationWatch.start({ connectionString: options.connectionString, logger, metrics: options.metrics });
      stopSteps.splice(watchStopAt, 0, () => watch.stop());
      firstRound = watch.firstRound;
    }

    // node_overview calls a node degraded while its heartbeat is fresh and
    // its watch has not observed yet: agent.started waits for the first
    // round (2 s at most: a slow source must not hold it up). The agent is
    // returned at once, so a stop meanwhile is a clean one; it says
    // agent.started first.
    let started = false;
    const announce = () => {
      if (started) return;
      started = true;
      logger.log('info', 'agent.started', {
        database: where,
        node_id: localNode,
        pid: process.pid,
        tasks: Object.keys(tasks),
        heartbeat_ms: heartbeatMs,
        unlocked_stale_jobs: unlockedJobs,
        health_watch: healthWatch,
        ...(options.metricsUrl ? { metrics_url: options.metricsUrl } : {}),
      });
    };
    let firstRoundTimer: NodeJS.Timeout | undefined;
    void Promise.race([firstRound, new Promise((resolve) => (firstRoundTimer = setTimeout(resolve, firstRoundWaitMs)))]).then(() => {
      clearTimeout(firstRoundTimer);
      announce();
    });
    stopSteps.push(async () => clearTimeout(firstRoundTimer));

    let settle!: { resolve: () => void; reject: (err: Error) => void };
    const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    done.catch(() => undefined);
    const stop = (reason = 'stop requested') => {
      stopping ??= (async () => {
        announce();
        logger.log('info', 'agent.stopping', { reason });
        await stopAll();
        logger.log(fatal ? 'error' : 'info', 'agent.stopped', { reason });
        if (fatal) settle.reject(fatal);
        else settle.resolve();
      })();
      return stopping;
    };
    fail = (err: Error) => {
      if (stopping) return;
      fatal = err;
      void stop(err.message);
    };

    // The control session holds the agent lock: when the server goes away it
    // reconnects and takes the lock again, and gives up after the timeout.
    const watchControl = (client: Client) => {
      client.once('end', () => {
        if (!stopping) void reconnect();
      });
    };
    const reconnect = async () => {
      reconnecting = true;
      logger.log('error', 'agent.connection_lost', { database: where, retrying_for_ms: reconnectTimeoutMs });
      const deadline = Date.now() + reconnectTimeoutMs;
      for (let attempt = 1; !stopping; attempt++) {
        try {
          const client = await connectTo(options.connectionString, 'steep-repl agent');
          if (stopping) return void (await client.end().catch(() => undefined));
          try {
            await takeAgentLock(client, where);
          } catch (err) {
            await client.end().catch(() => undefined);
            return fail(err as Error);
          }
          control = client;
          watchControl(client);
          reconnecting = false;
          logger.log('info', 'agent.reconnected', { database: where, attempts: attempt });
          return heartbeat();
        } catch (err) {
          if (Date.now() >= deadline) {
            return fail(
              new SteepError(
                `lost the connection to ${where} and could not get it back within ${Math.round(reconnectTimeoutMs / 1000)} s: ${(err as Error).message}`,
                ExitCode.connection,
                'start the agent again when the server accepts connections; queued jobs wait in the tables',
              ),
            );
          }
          await sleep(Math.min(backoff(attempt), Math.max(0, deadline - Date.now())));
        }
      }
    };
    watchControl(control);
    return {
      stop,
      done,
      get stopping() {
        return stopping !== undefined;
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function levelOf(event: string): LogLevel {
  if (event.endsWith('.failed')) return 'error';
  if (event === 'schema.mismatch_detected' || event === 'replication.degraded') return 'warn';
  return 'info';
}

function wrapTasks(
  steepTasks: Record<string, SteepTask>,
  cancellation: CancellationRegistry,
  agentShutdown: AbortSignal,
  logger: Logger,
  connectionString?: string,
): TaskList {
  const list: TaskList = {};
  for (const [name, steepTask] of Object.entries(steepTasks)) {
    const task: Task = async (payload, helpers) => {
      const jobId = String(helpers.job.id);
      const body = (payload ?? {}) as Record<string, unknown>;
      const cancel = cancellation.register(jobId, typeof body.node_id === 'string' ? body.node_id : undefined);
      const shutdown = helpers.abortSignal ? AbortSignal.any([agentShutdown, helpers.abortSignal]) : agentShutdown;
      try {
        await steepTask(body, { jobId, cancel, shutdown, logger, connectionString, helpers });
      } finally {
        cancellation.release(jobId);
      }
    };
    list[name] = task;
  }
  return list;
}

function watchJobs(runner: Runner, logger: Logger, shutdown: AbortSignal): void {
  runner.events.on('job:start', ({ job }) =>
    logger.log('info', 'job.started', { job_id: job.id, task: job.task_identifier, attempt: job.attempts }),
  );
  runner.events.on('job:success', ({ job }) =>
    logger.log('info', 'job.completed', { job_id: job.id, task: job.task_identifier }),
  );
  runner.events.on('job:error', ({ job, error }) => {
    const fields = {
      job_id: job.id,
      task: job.task_identifier,
      attempt: job.attempts,
      max_attempts: job.max_attempts,
      error: (error as Error)?.message ?? String(error),
    };
    // A job cut short by a shutdown is not a failure: it runs again later.
    if (shutdown.aborted) logger.log('info', 'job.interrupted', { ...fields, hint: 'it runs again when an agent starts' });
    else logger.log('error', 'job.failed', fields);
  });
}
