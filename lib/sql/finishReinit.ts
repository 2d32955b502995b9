import { Queryable } from './queryable';

// How the reinit job ends one (steep_repl.finish_reinit): unchanged (ended
// before its point of no return: back to the previous state) or recopied
// (cancelled after it: fully re-copied, not verified). A verify's outcome
// comes from finish_verify instead.
export type ReinitJobOutcome =
  | { outcome: 'unchanged'; details: { reason: 'cancelled' | 'failed'; error?: string; hint?: string; kind?: string } }
  | { outcome: 'recopied'; details?: Record<string, unknown> };

export async function finishReinit(db: Queryable, nodeId: string, end: ReinitJobOutcome): Promise<void> {
  await db.query('SELECT steep_repl.finish_reinit($1, $2, $3)', [nodeId, end.outcome, end.details ?? {}]);
}
