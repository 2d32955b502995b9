// Follows one job's status until it has ended (a snapshot's generate, a
// verify): the agent's progress and events arrive by NOTIFY on
// steep_repl_progress and steep_repl_events, and the whole status is
// re-read on each one about this job, after every (re)connect
// (notifications sent meanwhile are lost) and every few seconds (an agent
// that died sends none).
import { Client, ClientConfig } from 'pg';
import { channels, listen } from '../lib/notifications';
import { oneReadAtATime } from './one-read-at-a-time';

export interface StatusFollower<T> {
  // the status that ended it (rendered last)
  done: Promise<T>;
  stop(): Promise<void>;
}

export function followStatus<T>(
  config: ClientConfig,
  client: Client,
  options: {
    read(client: Client): Promise<T>;
    ended(s: T): boolean;
    // a notification's payload is about this job
    matches(payload: unknown): boolean;
    render(s: T): void;
    pollMs?: number;
  },
): StatusFollower<T> {
  let finish!: (s: T) => void;
  let fail!: (err: Error) => void;
  const done = new Promise<T>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  let finished = false;
  let stopped = false;
  const update = (next: T) => {
    if (finished || stopped) return;
    options.render(next);
    if (options.ended(next)) {
      finished = true;
      finish(next);
    }
  };
  // A server restart ends the caller's session with the listener's: after
  // the link drops, a read that fails runs again on a session of its own.
  let reader = client;
  let ownReader: Client | undefined;
  let linkDropped = false;
  const newReader = async (): Promise<Client> => {
    await ownReader?.end().catch(() => undefined);
    ownReader = new Client(config);
    ownReader.on('error', () => undefined);
    await ownReader.connect();
    return (reader = ownReader);
  };
  const readOnce = () =>
    options
      .read(reader)
      .catch(async (err) => {
        if (!linkDropped) throw err;
        return options.read(await newReader());
      })
      .then(update, (err) => {
        // a link still down: the next connect or tick reads again
        if (!stopped && !linkDropped) fail(err);
      });
  const reread = oneReadAtATime(readOnce, () => stopped);
  const listener = listen(config, [channels.progress, channels.events], {
    onConnected: () => {
      linkDropped = false;
      reread();
    },
    onDisconnected: () => {
      linkDropped = true;
    },
    onNotification: (_channel, payload) => {
      if (options.matches(payload)) reread();
    },
  });
  const ticker = setInterval(reread, options.pollMs ?? 3000);
  return {
    done,
    stop: async () => {
      stopped = true;
      clearInterval(ticker);
      await listener.close();
      await reread.current()?.catch(() => undefined);
      await ownReader?.end().catch(() => undefined);
    },
  };
}
