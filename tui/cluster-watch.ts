// What the live view shows, and nothing it made up: the registry of the
// --db node, and every registered node as its own database sees it. Each
// node has its own connection and listener, so a node that is down only
// marks its own row unreachable; it is retried on every poll and comes back
// by itself. Reads are re-done on every notification and after every
// reconnect (notifications sent while disconnected are lost).
import { EventEmitter } from 'node:events';
import { Client, ClientConfig } from 'pg';
import { clientConfig, connect, describeTarget } from '../lib/connection';
import { ExitCode, SteepError } from '../lib/errors';
import { channels, listen, Listener } from '../lib/notifications';
import { getInitStatus, InitProgress, MethodState, PartsSummary, TableProgress } from '../lib/sql/getInitStatus';
import { getReplicationName } from '../lib/sql/getReplicationName';
import { answered, peerConfig, peerTimeouts, problemOf } from '../lib/node-reach';
import { getSlotLag } from '../lib/sql/getSlotLag';
import { InitMethod, listInitMethods } from '../lib/sql/listInitMethods';
import { getNodeOverview, listNodes, NodeOverview } from '../lib/sql/listNodes';
import { Queryable } from '../lib/sql/queryable';
import { getSnapshotStatus, listSnapshots, SnapshotOverview, SnapshotStatus } from '../lib/sql/snapshots';

// States in which a node streams from its source, so its slot there has a lag.
const streamingStates = new Set(['catching_up', 'synchronized', 'diverged', 'reinitializing']);

export interface NodeView {
  id: string;
  // the node's row in the registry of the --db node
  registry: NodeOverview;
  // undefined until the first attempt to reach the node ends
  reachable?: boolean;
  problem?: string;
  // the node's own row, read from its own database
  state?: NodeOverview;
  // bytes the node's slot on its source is behind, read from the source; undefined when unknown
  slotLag?: number;
  // only for the node whose details are open (steep_repl.init_status)
  progress?: InitProgress | null;
  tables?: TableProgress[];
  // a method that copies in parts (direct): the parts summary; null for the others
  parts?: PartsSummary | null;
  methodState?: MethodState | null;
  // snapshots this node's database is generating (it is their source), as snapshot_status has them
  generating?: SnapshotStatus[];
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
    this.registryConfig = { ...clientConfig(options.db, this.applicationName), ...peerTimeouts };
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

  // Runs a typed call on a node's own database (startInit, cancelInit) and re-reads the node.
  async runOn<T>(nodeId: string, work: (db: Queryable) => Promise<T>): Promise<T> {
    const link = this.links.get(nodeId);
    if (!link) throw new Error(`node ${nodeId} is no longer registered`);
    try {
      return await this.exclusive(link, work);
    } finally {
      void this.readNode(nodeId);
    }
  }

  // A source's snapshots an apply could load now: ready and not past their
  // expiry, newest first (snapshot_overview on the source's own database).
  readySnapshots(sourceId: string): Promise<SnapshotOverview[]> {
    return this.runOn(sourceId, async (db) =>
      (await listSnapshots(db))
        .filter((s) => s.state === 'ready' && new Date(s.expires_at).getTime() > Date.now())
        .sort((a, b) => new Date(b.created_at).getTime() - new Date(a.created_at).getTime()),
    );
  }

  // The methods start_init on that node accepts, in the order to offer them.
  initMethods(nodeId: string): Promise<InitMethod[]> {
    return this.runOn(nodeId, (db) => listInitMethods(db, { availableOnly: true }));
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
      const rows = await listNodes(this.registryClient);
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

  private reconcile(rows: NodeOverview[]): void {
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

  private openLink(row: NodeOverview): NodeLink {
    // The --db node is reached the way the user told us; the others by their registry address.
    const config: ClientConfig = row.is_local ? this.registryConfig : peerConfig(row, this.applicationName);
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

  // slotName: the method's own when the node recorded one, else the pair's (replication_name).
  private async readSlotLag(sourceId: string, slotName: string): Promise<number | undefined> {
    const source = this.links.get(sourceId);
    if (!source || source.view.reachable === false) return undefined;
    try {
      const lag = await this.exclusive(source, (client) => getSlotLag(client, slotName));
      return lag.slot_exists && lag.confirmed_lsn !== null ? lag.lag_bytes ?? undefined : undefined;
    } catch {
      // the source's own read reports what is wrong with it
      return undefined;
    }
  }

  private async readOnce(link: NodeLink): Promise<void> {
    const id = link.view.id;
    try {
      const { state, status, slotName } = await this.exclusive(link, async (client) => {
        const state = await getNodeOverview(client, id);
        const status = state && this.detailNodeId === id ? await getInitStatus(client, id) : undefined;
        const streams = state?.init_source_node && streamingStates.has(state.init_state);
        const slotName = !streams
          ? undefined
          : (status?.method_state?.slot_name ?? (await getReplicationName(client, state.init_source_node!, id)));
        return { state, status, slotName };
      });
      // Read from the source after this node's own read, never inside it: two nodes may be each other's source.
      const slotLag = slotName ? await this.readSlotLag(state!.init_source_node!, slotName) : undefined;
      link.view = {
        ...link.view,
        reachable: true,
        slotLag,
        problem: state ? undefined : `node ${id} is not registered in its own database`,
        state,
        progress: status ? status.progress : undefined,
        tables: status?.tables,
        parts: status ? status.parts : undefined,
        methodState: status ? status.method_state : undefined,
        readAt: new Date(),
      };
      // The node's own row first, on screen at once; then the snapshots it
      // generates (kept as last read when that read fails: the next one retries).
      this.changed();
      const generating = await this.exclusive(link, readGenerating).catch(() => link.view.generating);
      link.view = { ...link.view, generating };
    } catch (err) {
      if (this.stopped) return;
      const reachable = answered(err);
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

// The snapshots a node is generating, each with its figures; none on a node
// whose steep_repl predates snapshots (0.5.0).
async function readGenerating(client: Client): Promise<SnapshotStatus[]> {
  let rows: SnapshotOverview[];
  try {
    rows = (await listSnapshots(client)).filter((s) => s.state === 'generating');
  } catch (err) {
    if (['42P01', '42883'].includes((err as { code?: string }).code ?? '')) return [];
    throw err;
  }
  const out: SnapshotStatus[] = [];
  for (const row of rows) {
    // one deleted between the two reads is no longer generating
    const status = await getSnapshotStatus(client, row.snapshot_id).catch(() => undefined);
    if (status?.state === 'generating') out.push(status);
  }
  return out;
}
