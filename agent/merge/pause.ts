// Test hook: STEEP_REPL_MERGE_PAUSE_AT=<step>:<ms>[,<step>:<ms>…] sleeps
// (cancellable) before the work that reaches that step, logging
// merge.paused, so a test can kill the agent, cancel, or write to the
// nodes while a merge is at a known place. Steps: prepared (the nodes are
// in the merge, before the merge points), compared (merge points and
// readers made, phase comparing), exchanged (compared, phase exchanging,
// nothing written), committing (the exchange written, before its COMMITs),
// subscribed (exchanged, before the subscriptions), caught_up (subscribed,
// before the catch-up wait), verified (caught up, before the final verify).
import { pause } from '../init/wait';

export type PausePoint = 'prepared' | 'compared' | 'exchanged' | 'committing' | 'subscribed' | 'caught_up' | 'verified';

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
