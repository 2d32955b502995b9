// Follows one node's init the way the docs tell other tools to: a pg-listen
// client on steep_repl_state and steep_repl_progress, recording each
// notification with the time it arrived.
import createSubscriber from 'pg-listen';
import { channels, ProgressNotification, StateNotification } from '../../lib/notifications';

export interface Arrival<T> {
  // Date.now() when the client received it
  at: number;
  payload: T;
}

// The init_progress row as announced; updated_at says when it changed.
export type ProgressPayload = ProgressNotification & { updated_at: string };

export interface InitFollower {
  readonly states: Array<Arrival<StateNotification>>;
  readonly progress: Array<Arrival<ProgressPayload>>;
  // when a transition to this state first arrived
  reachedAt(state: string): number | undefined;
  // Resolves with that time; rejects when the init fails first, the link
  // is lost or the time is up.
  reached(state: string, timeoutMs?: number): Promise<number>;
  latestProgress(): ProgressPayload | undefined;
  // once; later calls do nothing
  close(): Promise<void>;
}

export async function followInit(url: string, nodeId: string): Promise<InitFollower> {
  const states: Array<Arrival<StateNotification>> = [];
  const progress: Array<Arrival<ProgressPayload>> = [];
  const waiters = new Set<{ onState(to: StateNotification): void; onError(err: Error): void }>();
  const listener = createSubscriber({ connectionString: url });
  listener.events.on('error', (err: Error) => waiters.forEach((w) => w.onError(err)));
  listener.notifications.on(channels.state, (payload: StateNotification) => {
    if (payload.node_id !== nodeId) return;
    states.push({ at: Date.now(), payload });
    waiters.forEach((w) => w.onState(payload));
  });
  listener.notifications.on(channels.progress, (payload: ProgressPayload) => {
    if (payload.node_id === nodeId) progress.push({ at: Date.now(), payload });
  });
  await listener.connect();
  await listener.listenTo(channels.state);
  await listener.listenTo(channels.progress);

  let closed = false;
  const reachedAt = (state: string) => states.find((s) => s.payload.to === state)?.at;
  return {
    states,
    progress,
    reachedAt,
    reached: (state, timeoutMs = 30 * 60_000) =>
      new Promise<number>((resolve, reject) => {
        const already = reachedAt(state);
        if (already !== undefined) return resolve(already);
        const waiter = {
          onState: (s: StateNotification) => {
            if (s.to === state) end(() => resolve(reachedAt(state)!));
            else if (s.to === 'failed') end(() => reject(new Error(`init of ${nodeId} failed before reaching ${state}: ${s.reason ?? 'no reason given'}`)));
          },
          onError: (err: Error) => end(() => reject(new Error(`lost the notification link while waiting for ${nodeId} to reach ${state}: ${err.message}`))),
        };
        const timer = setTimeout(() => end(() => reject(new Error(`${nodeId} did not reach ${state} within ${timeoutMs} ms`))), timeoutMs);
        const end = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(waiter);
          settle();
        };
        waiters.add(waiter);
      }),
    latestProgress: () => progress[progress.length - 1]?.payload,
    close: async () => {
      if (closed) return;
      closed = true;
      await listener.close();
    },
  };
}
