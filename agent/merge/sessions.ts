// The sessions of a merge job. Control: node A's database (the agent's
// own), where the run lives and A's own merge calls run. Peer: node B's
// database for B's merge calls and catalog reads, reconnected while B is
// briefly away (withRetriedSource). Readers (one per node, the merge
// point) and writers (the exchange) are plain sessions opened on demand:
// a reader or writer that breaks ends what it was for.
import { Client } from 'pg';
import { clientConfig, connect, connectToNode, describeTarget, redactSecrets } from '../../lib/connection';
import { RegisteredNode } from '../../lib/sql/getNode';
import { sourceGraceMs, withRetriedSource } from '../init/failure';
import { pause } from '../init/wait';
import { prepareSession } from '../verify/session';

type Log = (level: 'info' | 'warn' | 'error', event: string, fields?: Record<string, unknown>) => void;

export class PeerSession {
  private client?: Client;

  constructor(
    readonly node: RegisteredNode,
    private readonly stop: AbortSignal,
    private readonly log: Log,
  ) {}

  run<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    return withRetriedSource(
      {
        node: this.node,
        current: () => this.client,
        open: async () => {
          const client = await connectToNode(this.node, 'steep-repl merge');
          client.on('error', (err) => this.log('warn', 'merge.peer_connection_error', { node: this.node.node_id, error: redactSecrets(err.message) }));
          return (this.client = client);
        },
        drop: async () => {
          await this.client?.end().catch(() => undefined);
          this.client = undefined;
        },
        wait: async () => {
          await pause(1000, [this.stop]);
          this.stop.throwIfAborted();
        },
        away: (where, err) => this.log('warn', 'merge.peer_unreachable', { node: where, error: redactSecrets(err.message), retry_for_ms: sourceGraceMs }),
        stopping: () => this.stop.aborted,
      },
      fn,
    );
  }

  async close(): Promise<void> {
    await this.client?.end().catch(() => undefined);
    this.client = undefined;
  }
}

// A session to either node, for the agent's own database (A) or a registered node (B).
export interface NodeEndpoint {
  node: RegisteredNode;
  // A: the agent's own connection string (reached as the agent reaches it)
  connectionString?: string;
  own: boolean;
}

// A comparing session: settings alike on both nodes (verify/session.ts).
// signal: a reader may be cut off at once by a cancel (it only reads).
export async function openSession(endpoint: NodeEndpoint, applicationName: string, signal?: AbortSignal): Promise<Client> {
  const client = endpoint.own
    ? await connect(clientConfig(endpoint.connectionString, applicationName), describeTarget(endpoint.connectionString), signal)
    : await connectToNode(endpoint.node, applicationName, signal);
  await prepareSession(client);
  return client;
}

export async function closeSession(client: Client | undefined): Promise<void> {
  if (!client) return;
  await client.query('ROLLBACK').catch(() => undefined);
  await client.end().catch(() => undefined);
}
