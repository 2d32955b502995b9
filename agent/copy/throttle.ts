// STEEP_REPL_COPY_MAX_RATE: bytes per second per copy or snapshot worker,
// for an operator who must spare a server (and for tests that need a copy
// to take a while); unset, no limit.
import { Transform } from 'node:stream';

// The stages a worker's stream goes through for the limit: none without one.
export function rateLimit(): Transform[] {
  const bytesPerSecond = Number(process.env.STEEP_REPL_COPY_MAX_RATE ?? 0);
  return bytesPerSecond > 0 ? [throttle(bytesPerSecond)] : [];
}

function throttle(bytesPerSecond: number): Transform {
  const startedAt = Date.now();
  let sent = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      sent += chunk.length;
      const due = startedAt + (sent / bytesPerSecond) * 1000;
      setTimeout(() => done(null, chunk), Math.max(0, due - Date.now()));
    },
  });
}
