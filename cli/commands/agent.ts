import { Errors, Flags } from '@oclif/core';
import { BaseCommand } from '../base-command';
import { startAgent } from '../../agent/main';
import { HealthMetrics } from '../../agent/health/metrics';
import { MetricsServer, serveMetrics } from '../../agent/health/metrics-server';
import { errorFields, exitCodeFor, isConnectionFailure } from '../../lib/errors';
import { jsonLogger } from '../../lib/log';

// Only this machine scrapes unless told otherwise.
const defaultMetricsHost = '127.0.0.1';

export default class AgentCommand extends BaseCommand<typeof AgentCommand> {
  static summary = "Run this node's agent: executes queued jobs, heartbeats the local node, logs one JSON object per line";
  static description = `One agent runs per database; a second one is refused (exit 1) and names the session of the first.

SIGTERM or SIGINT stops it cleanly (exit 0). When the database goes away it retries for --reconnect-timeout seconds, then exits 6; the agent rides out a server restart within that time.

It also watches replication (its subscriptions and slots) every steep_repl.health_settings.watch_interval_seconds and records the node's health; --metrics-port serves that, the init's progress and the agent's own figures as Prometheus metrics on http://<metrics-host>:<port>/metrics (see docs/metrics.md). A port that cannot be served is refused (exit 2) before anything starts.

Jobs wait in the database while no agent runs. A job that was running when an agent died runs again when the next agent starts. Log level: STEEP_REPL_LOG_LEVEL (debug, info, warn, error).`;
  static examples = [
    '<%= config.bin %> agent --db postgres://admin@db1:5432/app',
    '<%= config.bin %> agent --heartbeat-interval 2 --reconnect-timeout 300',
    '<%= config.bin %> agent --metrics-port 9187',
    '<%= config.bin %> agent --metrics-port 9187 --metrics-host 0.0.0.0',
  ];
  static flags = {
    concurrency: Flags.integer({ description: 'jobs run at the same time', default: 4, min: 1, max: 32 }),
    'heartbeat-interval': Flags.integer({
      description: "seconds between heartbeats (sets the local node's last_seen and status)",
      default: 5,
      min: 1,
      max: 3600,
    }),
    'reconnect-timeout': Flags.integer({
      description: 'seconds to keep retrying when the database goes away before exiting with code 6',
      default: 60,
      min: 0,
      max: 86400,
    }),
    'metrics-port': Flags.integer({
      description: 'serve Prometheus metrics on this TCP port (1-65535), path /metrics',
      helpValue: '<port>',
      // oclif's own wording names one bound only; a CLIError exits 2
      async parse(input) {
        if (!/^\d+$/.test(input) || Number(input) < 1 || Number(input) > 65535) {
          throw new Errors.CLIError(`expected a port number from 1 to 65535, not ${JSON.stringify(input)}`);
        }
        return Number(input);
      },
    }),
    // No oclif default: a default would count as given, and dependsOn would
    // refuse every agent started without --metrics-port.
    'metrics-host': Flags.string({
      description: `address to serve the metrics on (default ${defaultMetricsHost}; 0.0.0.0 or :: for every interface); only with --metrics-port`,
      helpValue: '<host>',
      dependsOn: ['metrics-port'],
    }),
    // For measuring what the watch costs (npm run bench -- health): without
    // it, node_overview soon says the node is degraded (the watch is silent).
    'health-watch': Flags.boolean({ default: true, allowNo: true, hidden: true }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(AgentCommand);
    const logger = jsonLogger({ component: 'agent' });
    // The agent must never die silently: a stray rejection is logged and stops it.
    let stopOnError: ((reason: string) => void) | undefined;
    let stopping = () => false;
    process.on('unhandledRejection', (reason) => {
      // A job that ended (interrupted by a stop, or failed) while the
      // database went away: graphile-worker cannot record that (its failJob
      // is not awaited). Its row stays locked by this agent's worker id; the
      // next agent frees it and runs it again. The agent itself rides out the
      // outage (or exits 6 after --reconnect-timeout), so this is no reason to stop.
      if (isConnectionFailure(reason as Error)) {
        logger.log('warn', 'agent.outcome_not_recorded', {
          ...errorFields(reason),
          hint: stopping()
            ? 'the interrupted job runs again when an agent starts'
            : 'the job stays locked by this agent until an agent starts again (graphile-worker frees a lock after 4 hours)',
        });
        return;
      }
      logger.log('error', 'agent.unhandled_rejection', errorFields(reason));
      process.exitCode = 1;
      stopOnError?.('unhandled rejection');
    });
    let server: MetricsServer | undefined;
    try {
      // Bound first: a port in use is refused before anything starts.
      const metrics = flags['metrics-port'] === undefined ? undefined : new HealthMetrics();
      if (metrics) server = await serveMetrics(metrics, flags['metrics-host'] ?? defaultMetricsHost, flags['metrics-port']!);
      const agent = await startAgent({
        connectionString: flags.db,
        logger,
        concurrency: flags.concurrency,
        heartbeatMs: flags['heartbeat-interval'] * 1000,
        reconnectTimeoutMs: flags['reconnect-timeout'] * 1000,
        healthWatch: flags['health-watch'],
        metrics,
        metricsUrl: server?.url,
      });
      stopOnError = (reason) => void agent.stop(reason);
      stopping = () => agent.stopping;
      const onSignal = (signal: NodeJS.Signals) => void agent.stop(`received ${signal}`);
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      await agent.done;
    } catch (err) {
      logger.log('error', 'agent.failed', { ...errorFields(err), exit_code: exitCodeFor(err) });
      throw err;
    } finally {
      await server?.close();
      // A library handle left open must not keep a stopped agent alive.
      setTimeout(() => process.exit(), 1000).unref();
    }
  }
}
