import type { ReinitState } from './listNodes';
import { Queryable } from './queryable';

export type ReinitStep = 'queued' | 'removing' | 'removed' | 'emptied' | 'added' | 'copied' | 'detached' | 'verifying';

// steep_repl.record_reinit_step: the step the reinit job reached, with
// facts for its resume; 'removing' is not recorded once a cancel was asked.
export async function recordReinitStep(
  db: Queryable,
  nodeId: string,
  step: ReinitStep,
  facts: Record<string, unknown> = {},
): Promise<ReinitState & { cancel_requested: boolean }> {
  return (await db.query('SELECT steep_repl.record_reinit_step($1, $2, $3) AS r', [nodeId, step, facts])).rows[0].r;
}
