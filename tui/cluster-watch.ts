// What the live view shows, and nothing it made up: the registry of the
// --db node, and every registered node as its own database sees it. Each
// node has its own connection and listener, so a node that is down only
// marks its own row unreachable; it is retried on every poll and comes back
// by itself. Reads are re-done on every notification and after every
// reconnect (notifications sent while disconnected are lost).
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client, ClientConfig } from 'pg';
import { clientConfig, connect, describeTarget, nodeClientConfig, redactSecrets } from '../lib/connection';
import { ExitCode, SteepError } from '../lib/errors';
import { channels, listen, Listener } from '../lib/notifications';
import { packageRoot } from '../lib/paths';

const readSql = (name: string) => fs.readFileSync(path.join(packageRoot, 'tui', 'sql', name), 'utf8');
const sql = {
  registry: readSql('registry.sql'),
  nodeState: readSql('node-state.sql'),
  initProgress: readSql('init-progress.sql'),
  initTables: readSql('init-tables.sql'),
  slotLag: readSql('slot-lag.sql'),
};

// States in which a node streams from its source, so its slot there has a lag.
const streamingStates = new Set(['catching_up', 'synchronized', 'diverged', 'reinitializing']);

// pg returns numeric and bigint as strings; the views convert what they print.
type Num = number | string | null;

export interface RegistryRow {
  node_id: string;
  node_name: string;
  host: string;
  port: number;
  dbname: string;
  user_name: string | null;
  priority: number;
  is_local: boolean;
  init_state: string;
  status: string;
  last_seen: Date | null;
  init_source_node: string | null;
}

export interface NodeState {
  node_id: string;
  init_state: string;
  init_in_progress: boolean;
  init_source_node: string | null;
  init_started_at: Date | null;
  status: string;
  last_seen: Date | null;
  phase: string | null;
  overall_percent: Num;
  tables_done: number | null;
  tables_total: number | null;
  rows_per_second: Num;
  eta_seconds: number | null;
  lag_bytes: Num;
  error: string | null;
  seconds_since_seen: number | null;
  health: string;
  can_start: boolean;
  start_states: string;
  can_cancel: boolean;
}

export interface InitProgress {
  node_id: string;
  source_node_id: string | null;
  method: string;
  phase: string;
  overall_percent: Num;
  tables_total: number;
  tables_done: number;
  current_table: string | null;
  current_table_percent: Num;
  rows_total: Num;
  rows_copied: Num;
  bytes_total: Num;
  bytes_copied: Num;
  rows_per_second: Num;
  bytes_per_second: Num;
  eta_seconds: number | null;
  workers_active: number;
  workers_max: number | null;
  lag_bytes: Num;
  error: string | null;
  elapsed_seconds: number;
}

export interface TableProgress {
  schema_name: string;
  table_name: string;
  // schema.table quoted the way psql needs it typed
  display_name: string;
  state: string;
  rows_total: Num;
  rows_copied: Num;
  bytes_total: Num;
  bytes_copied: Num;
  percent: Num;
  rows_per_second: Num;
  error: string | null;
  seconds: number | null;
}

export interface NodeView {
  id: string;
  registry: RegistryRow;
  // undefined until the first attempt to reach the node ends
  reachable?: boolean;
  problem?: string;
  // the node's own row, read from its own database
  state?: NodeState;
  // bytes the node's slot on its source is behind, read from the source; undefined when unknown
  slotLag?: number;
  // only for the node whose details are open
  progress?: InitProgress | null;
  tables?: TableProgress[];
  readAt?: Date;
}

interface NodeLink {
  view: NodeView;
  config: ClientConfig;
  client?: Client;
  listener: Listener;
  reading: boolean;
  readAgain: boolean;
  // One query at a time on the node's connection: reads, lag probes and actions queue here.
  queue: Promise<unknown>;
}

export interface ClusterWatchOptions {
  db?: string;
  pollMs?: number;
  applicationName?: string;
}

// A node that does not answer within this long is shown as unreachable.
const timeouts = { connectionTimeoutMillis: 3000, query_timeout: 5000 };

export class ClusterWatch extends EventEmitter {
  readonly target: string;
  registryProblem?: string;
  private readonly links = new Map<string, NodeLink>();
  private order: string[] = [];
  private registryClient?: Client;
  private registryQueue: Promise<unknown> = Promise.resolve();
  private readonly registryConfig: ClientConfig;
  private detailNodeId?: string;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly applicationName: string;

  constructor(private readonly options: ClusterWatchOptions = {}) {
    super();
    this.applicationName = options.applicationName ?? 'steep-repl tui';
    this.target = describeTarget(options.db);
    this.registryConfig = { ...clientConfig(options.db, this.applicationName), ...timeouts };
  }

  // Rejects when the --db node cannot be read at all; everything later is retried.
  async start(): Promise<void> {
    try {
      await this.readRegistry(true);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === '42P01' || code === '3F000') {
        throw new SteepError(`steep_repl is not installed in ${this.target}`, ExitCode.error, `run: steep-repl install --db <url of ${this.target}>`);
      }
      throw err;
    }
    this.timer = setInterval(() => void this.poll(), this.options.pollMs ?? 2000);
  }

  nodes(): NodeView[] {
    return this.order.map((id) => this.links.get(id)!.view);
  }

  node(id: string | undefined): NodeView | undefined {
    return id === undefined ? undefined : this.links.get(id)?.view;
  }

  // The detail overlay reads one node's per-table progress as well.
  watchDetail(nodeId: string | undefined): void {
    this.detailNodeId = nodeId;
    if (nodeId) void this.readNode(nodeId);
  }

  // Runs a statement on a node's own database (start_init, cancel_init) and re-reads it.
  async runOn<T extends Record<string, unknown>>(nodeId: string, text: string, params: unknown[]): Promise<T[]> {
    const link = this.links.get(nodeId);
    if (!link) throw new Error(`node ${nodeId} is no longer registered`);
    try {
      return await this.exclusive(link, async (client) => (await client.query<T>(text, params)).rows);
    } finally {
      void this.readNode(nodeId);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const links = [...this.links.values()];
    await Promise.all(links.map((link) => link.listener.close()));
    await Promise.all([
      ...links.map((link) => link.client?.end().catch(() => undefined)),
      this.registryClient?.end().catch(() => undefined),
    ]);
  }

  private changed(): void {
    if (!this.stopped) this.emit('change');
  }

  private async poll(): Promise<void> {
    await this.readRegistry(false);
    await Promise.all(this.order.map((id) => this.readNode(id)));
  }

  // One registry read at a time (polls and notifications overlap): two at
  // once after a lost link would each open a connection and leak one.
  private readRegistry(first: boolean): Promise<void> {
    const run = this.registryQueue.then(() => this.readRegistryNow(first));
    this.registryQueue = run.catch(() => undefined);
    return run;
  }

  private async readRegistryNow(first: boolean): Promise<void> {
    try {
      if (!this.registryClient) this.registryClient = await this.connectClient(this.registryConfig, this.target, () => {
        this.registryClient = undefined;
      });
      const { rows } = await this.registryClient.query<RegistryRow>(sql.registry);
      this.registryProblem = undefined;
      this.reconcile(rows);
    } catch (err) {
      await this.registryClient?.end().catch(() => undefined);
      this.registryClient = undefined;
      if (first) throw err;
      this.registryProblem = problemOf(err);
      this.changed();
    }
  }

  private reconcile(rows: RegistryRow[]): void {
    const seen = new Set<string>();
    for (const row of rows) {
      seen.add(row.node_id);
      const link = this.links.get(row.node_id);
      if (link) link.view = { ...link.view, registry: row };
      else this.links.set(row.node_id, this.openLink(row));
    }
    for (const [id, link] of this.links) {
      if (seen.has(id)) continue;
      this.links.delete(id);
      void link.listener.close();
      void link.client?.end().catch(() => undefined);
    }
    this.order = rows.map((r) => r.node_id);
    this.changed();
  }

  private openLink(row: RegistryRow): NodeLink {
    // The --db node is reached the way the user told us; the others by their registry address.
    const config: ClientConfig = row.is_local
      ? this.registryConfig
      : {
          ...nodeClientConfig(
            { host: row.host, port: row.port, dbname: row.dbname, user: row.user_name ?? undefined },
            this.applicationName,
          ),
          ...timeouts,
        };
    const link: NodeLink = {
      view: { id: row.node_id, registry: row },
      config,
      reading: false,
      readAgain: false,
      queue: Promise.resolve(),
    } as NodeLink;
    link.listener = listen(config, Object.values(channels), {
      onNotification: (_channel, payload) => {
        void this.readNode(row.node_id);
        const about = (payload as { node_id?: unknown } | null)?.node_id;
        if (typeof about === 'string' && about !== row.node_id && this.links.has(about)) void this.readNode(about);
        const event = (payload as { event?: unknown } | null)?.event;
        if (typeof event === 'string' && event.startsWith('node.')) void this.readRegistry(false);
      },
      onConnected: () => void this.readNode(row.node_id),
      onDisconnected: () => void this.readNode(row.node_id),
    });
    void this.readNode(row.node_id);
    return link;
  }

  private async connectClient(config: ClientConfig, where: string, onLost: () => void): Promise<Client> {
    const client = await connect(config, where);
    // An idle connection that breaks must not crash the screen; the next read reconnects.
    client.on('error', onLost);
    client.on('end', onLost);
    return client;
  }

  private exclusive<T>(link: NodeLink, work: (client: Client) => Promise<T>): Promise<T> {
    const run = link.queue.then(async () => work(await this.clientFor(link)));
    link.queue = run.catch(() => undefined);
    return run;
  }

  private async clientFor(link: NodeLink): Promise<Client> {
    if (link.client) return link.client;
    const { host, port, dbname } = link.view.registry;
    const client = await this.connectClient(link.config, `node ${link.view.id} at ${host}:${port}/${dbname}`, () => {
      if (link.client === client) link.client = undefined;
    });
    if (this.stopped || !this.links.has(link.view.id)) {
      await client.end().catch(() => undefined);
      throw new Error('stopped');
    }
    link.client = client;
    return client;
  }

  // One read per node at a time; a request during a read runs once more after it.
  private async readNode(id: string): Promise<void> {
    const link = this.links.get(id);
    if (!link || this.stopped) return;
    if (link.reading) {
      link.readAgain = true;
      return;
    }
    link.reading = true;
    try {
      do {
        link.readAgain = false;
        await this.readOnce(link);
      } while (link.readAgain && !this.stopped);
    } finally {
      link.reading = false;
    }
  }

  private async readSlotLag(sourceId: string, targetId: string): Promise<number | undefined> {
    const source = this.links.get(sourceId);
    if (!source || source.view.reachable === false) return undefined;
    try {
      const row = await this.exclusive(
        source,
        async (client) => (await client.query<{ lag_bytes: string | null }>(sql.slotLag, [sourceId, targetId])).rows[0],
      );
      return row?.lag_bytes == null ? undefined : Number(row.lag_bytes);
    } catch {
      // the source's own read reports what is wrong with it
      return undefined;
    }
  }

  private async readOnce(link: NodeLink): Promise<void> {
    const id = link.view.id;
    try {
      const { state, progress, tables } = await this.exclusive(link, async (client) => {
        const state = (await client.query<NodeState>(sql.nodeState, [id])).rows[0];
        if (this.detailNodeId !== id) return { state, progress: undefined, tables: undefined };
        return {
          state,
          progress: (await client.query<InitProgress>(sql.initProgress, [id])).rows[0] ?? null,
          tables: (await client.query<TableProgress>(sql.initTables, [id])).rows,
        };
      });
      // Read from the source after this node's own read, never inside it: two nodes may be each other's source.
      const slotLag = state && streamingStates.has(state.init_state) && state.init_source_node
        ? await this.readSlotLag(state.init_source_node, id)
        : undefined;
      link.view = {
        ...link.view,
        reachable: true,
        slotLag,
        problem: state ? undefined : `node ${id} is not registered in its own database`,
        state,
        progress,
        tables,
        readAt: new Date(),
      };
    } catch (err) {
      if (this.stopped) return;
      const code = (err as { code?: string }).code;
      // A server that answers with an SQL error is reachable; only a lost or refused connection is not.
      const reachable = code !== undefined && !/^(08|57P)/.test(code);
      if (!reachable) {
        const client = link.client;
        link.client = undefined;
        await client?.end().catch(() => undefined);
      }
      link.view = { ...link.view, reachable, problem: problemOf(err), ...(reachable ? { state: undefined } : {}) };
    }
    this.changed();
  }
}

function problemOf(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e.code === '42P01' || e.code === '3F000') return 'steep_repl is not installed there';
  return redactSecrets(e.message ?? String(err));
}
