// A real LISTEN connection that records what arrives on steep_repl channels,
// and a fence that says "everything committed before this point has arrived":
// PostgreSQL delivers notifications in commit order, so once a fence NOTIFY
// sent after an operation is seen, every NOTIFY of that operation was seen too.
import { Client, DatabaseError, Notification } from 'pg';

const fenceChannel = 'steep_test_fence';

export interface Received {
  channel: string;
  payload: string;
}

export class ChannelRecorder {
  received: Received[] = [];
  private readonly client: Client;
  private readonly fences = new Map<string, () => void>();
  private fenceCounter = 0;

  private constructor(url: string) {
    this.client = new Client({ connectionString: url });
    this.client.on('notification', (n: Notification) => {
      if (n.channel === fenceChannel) this.fences.get(n.payload ?? '')?.();
      else this.received.push({ channel: n.channel, payload: n.payload ?? '' });
    });
  }

  static async listen(url: string, channels: string[]): Promise<ChannelRecorder> {
    const recorder = new ChannelRecorder(url);
    await recorder.client.connect();
    for (const channel of [...channels, fenceChannel]) await recorder.client.query(`LISTEN ${recorder.client.escapeIdentifier(channel)}`);
    return recorder;
  }

  // Sends a fence from `sender` (after its last commit) and waits for it.
  async fence(sender: Client): Promise<void> {
    const token = String(++this.fenceCounter);
    const seen = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`fence ${token} not delivered within 5 s`)), 5000);
      this.fences.set(token, () => {
        clearTimeout(timer);
        this.fences.delete(token);
        resolve();
      });
    });
    await sender.query('SELECT pg_notify($1, $2)', [fenceChannel, token]);
    await seen;
  }

  // What arrived since the last take, parsed; the record starts empty again.
  take(): Array<{ channel: string; payload: any }> {
    const out = this.received.map((r) => ({ channel: r.channel, payload: JSON.parse(r.payload) }));
    this.received = [];
    return out;
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}

// The error a statement raised; fails the test if it raised none.
export async function pgError(statement: Promise<unknown>): Promise<DatabaseError> {
  try {
    await statement;
  } catch (err) {
    if (err instanceof DatabaseError) return err;
    throw err;
  }
  throw new Error('expected the statement to fail, it succeeded');
}
