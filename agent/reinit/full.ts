// node reinit --full through the common init runner (agent/init/runner.ts),
// with the node's own method and options: first the pair's replication is
// removed as node detach removes it for this pair (the subscription here,
// its slots and the publication on the source; rows stay, the plan then
// empties them under the origin, as --force does), and the last phase is a
// verify of every table instead of the direct synchronized. The node stays
// reinitializing all along (its phase says where it is): catching_up has no
// way to diverged, and the verify decides.
import { SteepError } from '../../lib/errors';
import { finishReinit } from '../../lib/sql/finishReinit';
import { recordReinitStep } from '../../lib/sql/recordReinitStep';
import { cleanupInit } from '../init/cleanup';
import type { InitRun } from '../init/runner';

// Before the plan; a run that did it already goes on (step detached).
export async function removePairReplication(run: InitRun): Promise<void> {
  if (run.reinit?.step !== 'queued') return;
  const result = await run.withSource((source) => cleanupInit({ target: run.target, source, state: run.state, tables: [] }));
  const left = [...result.leftOnSource, ...result.leftOnTarget];
  if (!result.sourceChecked || left.length) {
    throw new SteepError(
      `the replication of the pair could not be removed before the re-copy${result.sourceError ? `: ${result.sourceError}` : ''}`,
      undefined,
      left.length ? `left: ${left.join('; ')}` : 'check that the source is reachable, then cancel and reinit again',
    );
  }
  await recordReinitStep(run.target, run.nodeId, 'detached', { removed: result.removed });
  await run.refresh();
  run.log('info', 'reinit.replication_removed', { removed: result.removed, note: 'the rows stay; the plan empties them without replicating' });
}

// Nothing changed yet (the pair's replication still stands): a cancel or a
// failure puts the node back in its previous state instead of an init's end.
export async function endFullUnchanged(run: InitRun, reason: 'cancelled' | 'failed', err?: Error): Promise<boolean> {
  if (!run.reinit || run.reinit.changed) return false;
  const error = err?.message;
  const hint = (err as { hint?: string } | undefined)?.hint;
  await finishReinit(run.target, run.nodeId, { outcome: 'unchanged', details: { reason, error, hint } });
  run.log(reason === 'failed' ? 'error' : 'info', reason === 'failed' ? 'reinit.failed' : 'reinit.cancelled', { changed: false, error, hint });
  return true;
}
