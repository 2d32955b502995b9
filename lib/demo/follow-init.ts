// Prints one node's initialization as it moves (for `demo --no-tui`): every
// state change as it is announced, progress at most every 2 s, and the state
// re-read after each (re)connect because notifications can be lost.
import { Client } from 'pg';
import { duration } from '../../cli/render';
import { clientConfig, connectTo } from '../connection';
import { channels, listen, ProgressNotification, StateNotification } from '../notifications';

export interface FollowOptions {
  say(text: string): void;
  // Resolve once the node is synchronized or failed; otherwise on SIGINT/SIGTERM/SIGHUP.
  untilSettled: boolean;
}

const settled = new Set(['synchronized', 'failed']);

export async function followInit(url: string, nodeId: string, options: FollowOptions): Promise<string> {
  const { say } = options;
  const client: Client = await connectTo(url, 'steep-repl demo follow');
  client.on('error', () => undefined);
  let lastProgressAt = 0;
  let state = 'unknown';
  return new Promise<string>((resolve) => {
    let done = false;
    const finish = async () => {
      if (done) return;
      done = true;
      process.off('SIGINT', finish);
      process.off('SIGTERM', finish);
      process.off('SIGHUP', finish);
      await listener.close();
      await client.end().catch(() => undefined);
      resolve(state);
    };
    const arrived = (to: string, error?: string | null) => {
      state = to;
      if (options.untilSettled && settled.has(to)) {
        if (to === 'failed' && error) say(`${nodeId} failed: ${error}`);
        void finish();
      }
    };
    const reread = async () => {
      try {
        const { rows } = await client.query(
          'SELECT init_state, overall_percent, error FROM steep_repl.node_overview WHERE node_id = $1',
          [nodeId],
        );
        if (!rows[0]) return;
        if (rows[0].init_state !== state) say(`${nodeId}: ${rows[0].init_state}`);
        arrived(rows[0].init_state, rows[0].error);
      } catch (err) {
        say(`cannot read ${nodeId}: ${(err as Error).message}`);
      }
    };
    const listener = listen(clientConfig(url, 'steep-repl demo listen'), [channels.state, channels.progress], {
      onConnected: () => void reread(),
      onNotification: (channel, payload) => {
        if (channel === channels.state) {
          const change = payload as StateNotification;
          if (change.node_id !== nodeId) return;
          say(`${nodeId}: ${change.from} → ${change.to}${change.reason ? ` (${change.reason})` : ''}`);
          arrived(change.to);
          if (change.to === 'failed') void reread();
        } else {
          const progress = payload as ProgressNotification;
          if (progress.node_id !== nodeId || Date.now() - lastProgressAt < 2000) return;
          lastProgressAt = Date.now();
          const eta = progress.eta_seconds == null ? '' : ` ETA ${duration(progress.eta_seconds)}`;
          say(`${nodeId}: ${progress.phase} ${Math.floor(Number(progress.overall_percent))}% tables ${progress.tables_done}/${progress.tables_total}${eta}`);
        }
      },
    });
    process.once('SIGINT', finish);
    process.once('SIGTERM', finish);
    process.once('SIGHUP', finish);
  });
}
