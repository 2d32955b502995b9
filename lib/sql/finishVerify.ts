import { Queryable } from './queryable';

export type VerifyOutcome =
  | { outcome: 'equal' | 'differs' | 'unsettled'; details?: Record<string, unknown> }
  | { outcome: 'failed'; error: string; hint?: string }
  | { outcome: 'cancelled'; details?: Record<string, unknown> };

// What finish_verify returns and puts in its event.
export interface VerifyFinished {
  verify_id: number;
  outcome: string;
  // the node's state afterwards
  state: string;
  tables_total: number;
  tables_differing: string[];
  tables_unsettled: string[];
  rows_missing: number;
  rows_extra: number;
  rows_different: number;
  rows_unsettled: number;
  seconds: number;
}

export async function finishVerify(db: Queryable, verifyId: number, end: VerifyOutcome): Promise<VerifyFinished> {
  const details = end.outcome === 'failed' ? { error: end.error, hint: end.hint } : (end.details ?? {});
  return (await db.query('SELECT steep_repl.finish_verify($1, $2, $3) AS r', [verifyId, end.outcome, details])).rows[0].r;
}
