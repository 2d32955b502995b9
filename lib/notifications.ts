// LISTEN on a node's steep_repl channels, for as long as the caller wants:
// reconnects forever with backoff, reports when the link drops and comes
// back, and can be closed at any moment (also while reconnecting). A
// notification sent while disconnected is lost, so onConnected is the
// caller's cue to re-read the state it shows.
import { ClientConfig } from 'pg';
import createSubscriber, { Subscriber } from 'pg-listen';
import type { InitProgress } from './sql/getInitStatus';

export const channels = {
  state: 'steep_repl_state',
  progress: 'steep_repl_progress',
  events: 'steep_repl_events',
} as const;

export type ChannelName = (typeof channels)[keyof typeof channels];

// Payload of steep_repl_state: one init_state transition.
export interface StateNotification {
  node_id: string;
  from: string;
  to: string;
  source_node: string | null;
  audit_id: number;
  at: string;
  reason: string | null;
}

// Payload of steep_repl_progress: the init_progress row without options
// (steep_repl.announce_progress); init_status adds phases and elapsed_seconds,
// and what the method records (slot, lsn_target) is in init_status.method_state.
export type ProgressNotification = Omit<InitProgress, 'options' | 'phases' | 'elapsed_seconds'> & {
  // only when the error was cut to fit NOTIFY's 8000 bytes
  truncated?: true;
};

// Payload of steep_repl_progress from a verify job (announce_verify_progress;
// kind tells it from an init's progress row, which has the same node_id).
// The fields a follow uses.
export interface VerifyProgressNotification {
  kind: 'verify';
  verify_id: number;
  node_id: string;
  peer_node_id: string | null;
  phase: string | null;
  percent: number;
  tables_done: number;
  tables_total: number;
  current_table: string | null;
}

// Payload of steep_repl_events: an audit event.
export interface EventNotification {
  event: string;
  node_id: string | null;
  audit_id: number;
  at: string;
  details?: Record<string, unknown>;
  truncated?: boolean;
}

export interface ListenHandlers {
  onNotification(channel: ChannelName, payload: unknown): void;
  // Every time the LISTENs are in place: first connect and each reconnect.
  onConnected?(): void;
  onDisconnected?(error?: Error): void;
}

export interface Listener {
  readonly connected: boolean;
  close(): Promise<void>;
}

// Wait before reconnect attempt n: 250 ms doubling up to 5 s.
export const backoff = (attempt: number) => Math.min(250 * 2 ** Math.max(0, attempt), 5000);

export function listen(
  config: ClientConfig,
  channelNames: readonly ChannelName[] = Object.values(channels),
  handlers: ListenHandlers,
): Listener {
  let closed = false;
  let connected = false;
  let current: Subscriber | undefined;
  let retryTimer: NodeJS.Timeout | undefined;

  const disconnected = (error?: Error) => {
    if (closed) return;
    connected = false;
    handlers.onDisconnected?.(error);
  };

  // pg-listen retries only after a first successful connect; before that,
  // each attempt is a fresh subscriber.
  const attempt = async (n: number) => {
    if (closed) return;
    let abandoned = false;
    const subscriber = createSubscriber(config, {
      retryTimeout: Infinity,
      // Throwing here ends pg-listen's reconnect loop once we are closed.
      retryInterval: (a) => {
        if (closed || abandoned) throw new Error('listener closed');
        return backoff(a);
      },
    });
    subscriber.events.on('error', (err: Error) => disconnected(err));
    subscriber.events.on('reconnect', (a: number) => {
      if (a === 1) disconnected();
    });
    subscriber.events.on('connected', () => {
      if (closed || abandoned) {
        void subscriber.close().catch(() => undefined);
        return;
      }
      // The first 'connected' comes before our LISTENs; later ones after pg-listen re-LISTENed.
      if (current === subscriber) {
        connected = true;
        handlers.onConnected?.();
      }
    });
    subscriber.events.on('notification', ({ channel, payload }) => {
      if (!closed && current === subscriber) handlers.onNotification(channel as ChannelName, payload);
    });
    try {
      await subscriber.connect();
      for (const name of channelNames) await subscriber.listenTo(name);
    } catch (err) {
      abandoned = true;
      await subscriber.close().catch(() => undefined);
      disconnected(err as Error);
      if (!closed) retryTimer = setTimeout(() => void attempt(n + 1), backoff(n));
      return;
    }
    if (closed) {
      await subscriber.close().catch(() => undefined);
      return;
    }
    current = subscriber;
    connected = true;
    handlers.onConnected?.();
  };
  void attempt(0);

  return {
    get connected() {
      return connected;
    },
    async close() {
      closed = true;
      connected = false;
      if (retryTimer) clearTimeout(retryTimer);
      await current?.close().catch(() => undefined);
    },
  };
}
