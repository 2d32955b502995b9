// The agent's watch of replication after SYNCHRONIZED: every
// health_settings.watch_interval_seconds it asks each source of this
// node's steep-repl subscriptions for its position, hands those facts to
// steep_repl.observe_replication (one transaction: records, decides,
// emits replication.degraded / replication.recovered) and sets the
// metrics from the rows it returns. Its own session, so a slow round never
// holds up the heartbeat or a job; a failed round is logged once per
// distinct error and tried again at the next one.
import { setMaxListeners } from 'node:events';
import { Client } from 'pg';
import { clientConfig, connect, describeTarget, redactSecrets } from '../../lib/connection';
import { isConnectionFailure } from '../../lib/errors';
import { Logger } from '../../lib/log';
import { Queryable } from '../../lib/sql/queryable';
import { observeReplication } from '../../lib/sql/observeReplication';
import { replicationSources } from '../../lib/sql/replicationSources';
import { HealthMetrics, LocalNodeFacts } from './metrics';
import { endWithin, SourceProbes } from './sources';

export interface WatchOptions {
  connectionString?: string;
  logger: Logger;
  // set from each round when the agent serves metrics
  metrics?: HealthMetrics;
}

// health_settings' default, until the table says otherwise
const defaultIntervalMs = 5000;

const settingsSql = `SELECT steep_repl.local_node_id() AS node_id,
                            (SELECT watch_interval_seconds::float8 FROM steep_repl.health_settings) AS interval_seconds`;
// the local row only; read only when metrics are served
const localNodeSql = `SELECT health, init_state, method, overall_percent::float8 AS overall_percent,
                             rows_per_second::float8 AS rows_per_second, eta_seconds::float8 AS eta_seconds
                      FROM steep_repl.node_overview WHERE is_local`;

export class ReplicationWatch {
  private readonly stopper = new AbortController();
  private readonly probes: SourceProbes;
  private client?: Client;
  private intervalMs = defaultIntervalMs;
  private lastError?: string;
  private failedRounds = 0;
  private wake?: () => void;
  private stopping = false;
  private readonly loop: Promise<void>;
  private firstRoundDone!: () => void;
  // Settles when the first round has ended, however it ended.
  readonly firstRound = new Promise<void>((resolve) => (this.firstRoundDone = resolve));

  private constructor(private readonly options: WatchOptions) {
    // one abort listener per session (this one and a source's each)
    setMaxListeners(1000, this.stopper.signal);
    this.probes = new SourceProbes(this.stopper.signal);
    this.loop = this.run();
  }

  // The first round runs at once.
  static start(options: WatchOptions): ReplicationWatch {
    return new ReplicationWatch(options);
  }

  // The stop signal destroys every socket of the watch at once, those of
  // sessions being dropped too: a round under way ends (its transaction
  // rolls back), and neither a source that does not answer nor a half-open
  // connection holds up the agent's stop (a goodbye to a server that never
  // acknowledges waits for TCP's retries, minutes). The server takes an
  // idle session's closed socket as its end, without a log line.
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    if (!this.stopper.signal.aborted) this.stopper.abort(new Error('the agent is stopping'));
    await this.loop;
    await Promise.all([endWithin(this.client), this.probes.close()]);
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const began = Date.now();
      let waitMs: number;
      try {
        await this.round().finally(() => this.firstRoundDone());
        if (this.failedRounds) this.options.logger.log('info', 'health.watch_recovered', { failed_rounds: this.failedRounds });
        this.failedRounds = 0;
        this.lastError = undefined;
        waitMs = this.intervalMs - (Date.now() - began);
      } catch (err) {
        if (this.stopping) break;
        this.failed(err as Error);
        waitMs = this.intervalMs;
      }
      await this.sleep(Math.max(0, waitMs));
    }
  }

  private async round(): Promise<void> {
    const began = Date.now();
    const client = await this.session();
    // what a round costs, for its debug line (and npm run bench -- health)
    let queries = 0;
    const db: Queryable = {
      query: (text: string, values?: unknown[]) => {
        queries += 1;
        return client.query(text, values);
      },
    };
    const {
      rows: [settings],
    } = await db.query(settingsSql).catch((err) => {
      throw /health_settings/.test(err.message) && err.code === '42P01'
        ? new Error('steep_repl.health_settings does not exist: steep_repl in this database is older than 0.9.0; run steep-repl install to bring it up to date')
        : err;
    });
    if (settings.interval_seconds) this.intervalMs = Number(settings.interval_seconds) * 1000;
    // no local node yet (agent.no_local_node said so): nothing to watch
    if (!settings.node_id) return;
    const sources = await replicationSources(db);
    const probed = await this.probes.probe(sources);
    if (this.stopping) return;
    const rows = await observeReplication(db, probed.facts);
    const observedAt = new Date();
    const { metrics } = this.options;
    if (metrics) {
      const local: LocalNodeFacts | undefined = (await db.query(localNodeSql)).rows[0];
      metrics.update({ node: settings.node_id, rows, local, observedAt });
    }
    this.options.logger.log('debug', 'health.round', {
      duration_ms: Date.now() - began,
      queries,
      source_queries: probed.asked,
      sources_failed: probed.failed,
      subscriptions: rows.filter((r) => r.kind === 'subscription').length,
      slots: rows.filter((r) => r.kind === 'slot').length,
      degraded: rows.filter((r) => r.status === 'degraded').length,
    });
  }

  private async session(): Promise<Client> {
    if (this.client) return this.client;
    const { connectionString } = this.options;
    // the stop signal aborts a connection attempt and, later, a query under way
    const client = await connect(clientConfig(connectionString, 'steep-repl agent health'), describeTarget(connectionString), this.stopper.signal);
    client.once('end', () => this.client === client && (this.client = undefined));
    this.client = client;
    return client;
  }

  private failed(err: Error): void {
    this.failedRounds += 1;
    const error = redactSecrets(err.message);
    // a broken session is made again next round
    if (isConnectionFailure(err as Error & { code?: string })) void endWithin(this.client);
    if (error === this.lastError) return;
    this.lastError = error;
    const code = (err as { code?: string }).code;
    this.options.logger.log('warn', 'health.watch_failed', { error, ...(code ? { code } : {}), retry_in_ms: this.intervalMs });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}
