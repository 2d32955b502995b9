// A client writing to a database in small transactions until stopped, as an
// application keeps writing to a source while it is copied.
import { Client, QueryConfig } from 'pg';

export interface WriterCounts {
  transactions: number;
  // rows the statements inserted, updated or deleted
  rows: number;
}

export interface Writer {
  // live; final once stop() resolved
  readonly counts: WriterCounts;
  // the failure that ended the writing, as soon as it happened
  readonly error: Error | undefined;
  // Resolves with what was committed; rejects with the first failed statement.
  stop(): Promise<WriterCounts>;
}

// transaction(n) gives the statements of the n-th transaction (n from 0).
export function startWriter(url: string, transaction: (n: number) => QueryConfig[], options: { pauseMs?: number } = {}): Writer {
  const pauseMs = options.pauseMs ?? 5;
  const counts: WriterCounts = { transactions: 0, rows: 0 };
  let running = true;
  let error: Error | undefined;
  const done = (async () => {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      for (let n = 0; running; n++) {
        let rows = 0;
        await client.query('BEGIN');
        for (const statement of transaction(n)) {
          try {
            rows += (await client.query(statement)).rowCount ?? 0;
          } catch (err) {
            throw new Error(`writer transaction ${n} failed at ${statement.text}: ${(err as Error).message}`);
          }
        }
        await client.query('COMMIT');
        counts.transactions += 1;
        counts.rows += rows;
        if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
      }
    } finally {
      await client.end();
    }
  })();
  // Seen by stop(); until then a failure must not crash the process as unhandled.
  done.catch((err) => (error = err));
  return {
    counts,
    get error() {
      return error;
    },
    stop: async () => {
      running = false;
      await done;
      return { ...counts };
    },
  };
}
