// sha256 of whole files in worker threads (hash-worker.ts): hashing is CPU
// work, and on the agent's one JavaScript thread the apply's check of a
// snapshot would take about a second a GB however many cores there are.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

export interface FileHasher {
  sha256(file: string): Promise<string>;
}

// n hashers, each with a thread of its own, for fn's parallel lanes; the
// threads end with fn.
export async function withFileHashers<T>(n: number, fn: (hashers: FileHasher[]) => Promise<T>): Promise<T> {
  const workers = Array.from({ length: n }, () => new Worker(path.join(__dirname, 'hash-worker.js')));
  try {
    return await fn(workers.map(hasher));
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

function hasher(worker: Worker): FileHasher {
  return {
    sha256: (file) =>
      new Promise((resolve, reject) => {
        const failed = (err: Error) => reject(err);
        worker.once('error', failed);
        worker.once('message', (answer: { sha256?: string; error?: string }) => {
          worker.off('error', failed);
          if (answer.sha256) resolve(answer.sha256);
          else reject(new Error(answer.error ?? 'no answer'));
        });
        worker.postMessage(file);
      }),
  };
}
