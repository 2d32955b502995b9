import { Queryable } from './queryable';

export type FailureKind = 'schema_mismatch' | 'timeout' | 'connection' | 'error';

export type InitOutcome =
  | { outcome: 'completed'; details?: Record<string, unknown> }
  // the message recorded adds what was kept and how to resume (steep_repl.init_failure_message)
  | { outcome: 'failed'; error: string; kind: FailureKind; hint?: string }
  | { outcome: 'cancelled'; details?: Record<string, unknown> };

export async function finishInit(db: Queryable, nodeId: string, end: InitOutcome): Promise<void> {
  const details = end.outcome === 'failed' ? { error: end.error, kind: end.kind, hint: end.hint } : (end.details ?? {});
  await db.query('SELECT steep_repl.finish_init($1, $2, $3)', [nodeId, end.outcome, details]);
}
