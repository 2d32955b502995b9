// Test hook: STEEP_REPL_MERGE_PAUSE_AT=<point>:<ms>[,<point>:<ms>…] sleeps
// before that point of the job (cancellable), so a test can kill the
// agent, cancel, or write to the nodes while a merge is at a known place.
// Points: slots (before the merge points are made), comparing (slots and
// readers made), exchanging (compared), committing (the exchange written,
// before its COMMITs), subscribing (exchanged), waiting (subscribed, before
// the catch-up wait), verifying (caught up, before the final verify).
import { pause } from '../init/wait';

export type PausePoint = 'slots' | 'comparing' | 'exchanging' | 'committing' | 'subscribing' | 'waiting' | 'verifying';

function pauses(): Map<string, number> {
  const out = new Map<string, number>();
  for (const part of (process.env.STEEP_REPL_MERGE_PAUSE_AT ?? '').split(',')) {
    const [point, ms] = part.split(':');
    if (point && Number(ms) > 0) out.set(point.trim(), Number(ms));
  }
  return out;
}

export async function pauseAt(point: PausePoint, signal: AbortSignal, log: (ms: number) => void): Promise<void> {
  const ms = pauses().get(point);
  if (!ms) return;
  log(ms);
  await pause(ms, [signal]);
}
