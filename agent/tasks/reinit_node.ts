// node reinit --tables / --schema (SPEC 4.5): only those tables are emptied
// and copied again, through the pair's own subscription, while every other
// table keeps replicating (agent/reinit/steps.ts); the re-copied tables are
// then verified (agent/reinit/verify.ts), whose end ends the reinit. Each
// step is recorded (init_progress.reinit.step), so a job killed at any
// moment resumes from it and the catalogs. Until the tables leave the
// publication a cancel or a failure changes nothing: the node returns to
// its previous state. After that they cannot be left half: a failure is
// retried (the job runs again), a cancel lets the re-copy finish and only
// skips the verify. --full runs the node's own init method instead
// (agent/init/runner.ts).
import { connectTo, redactSecrets } from '../../lib/connection';
import { finishReinit } from '../../lib/sql/finishReinit';
import { ReinitStep } from '../../lib/sql/recordReinitStep';
import { SteepError } from '../../lib/errors';
import { classify } from '../init/failure';
import { followCopy } from '../reinit/copy';
import { ReinitRun } from '../reinit/run';
import { addBack, checkTables, emptyTables, removeFromPublication } from '../reinit/steps';
import { verifyReinit } from '../reinit/verify';
import { SteepTask } from '../task';

export const reinit_node: SteepTask = async (payload, ctx) => {
  const target = await connectTo(ctx.connectionString, 'steep-repl reinit');
  target.on('error', (err) => ctx.logger.log('warn', 'reinit.target_connection_error', { node_id: payload.node_id, error: err.message }));
  const run = new ReinitRun(String(payload.node_id), target, ctx);
  try {
    await execute(run);
  } finally {
    await run.close();
  }
};

async function execute(run: ReinitRun): Promise<void> {
  const status = await run.refresh();
  if (!run.reinit || status.state !== 'reinitializing' || run.reinit.scope === 'full') {
    run.log('warn', 'reinit.job_ignored', { reason: run.reinit ? `node is ${status.state}` : 'no reinit recorded for this node', state: status.state });
    return;
  }
  await run.loadSource();
  run.log('info', 'reinit.job_started', { source_node: run.sourceNode.node_id, scope: run.reinit.scope, tables: run.labels, step: run.reinit.step });
  try {
    if (!run.reinit.changed && !(await beforeTheChange(run))) return;
    await recopy(run);
  } catch (err) {
    if (run.ctx.shutdown.aborted) {
      run.log('info', 'reinit.paused', { step: run.reinit.step, reason: 'agent stopping; the job resumes when an agent starts' });
      throw err;
    }
    const error = redactSecrets((err as Error).message);
    const hint = (err as { hint?: string }).hint;
    if (!run.reinit.changed) {
      await finishReinit(run.target, run.nodeId, { outcome: 'unchanged', details: { reason: 'failed', error, hint, kind: classify(err) } });
      run.log('error', 'reinit.failed', { step: run.reinit.step, error, hint, changed: false });
      return;
    }
    // Past the point of no return: recorded for node status, then the job
    // fails so graphile-worker runs it again from the step it reached.
    await run.record(run.reinit.step as ReinitStep, { error, error_hint: hint ?? null }).catch(() => undefined);
    run.log('error', 'reinit.step_failed', { step: run.reinit.step, error, hint, retrying: true, tables: run.labels });
    throw err;
  }
}

// Until the point of no return (step removing, recorded in the same lock
// as a cancel request): a cancel, the timeout or a failed check end the
// reinit with nothing changed. Returns false when it ended.
async function beforeTheChange(run: ReinitRun): Promise<boolean> {
  if (run.ctx.cancel.aborted || (await run.cancelRequested())) return endUnchanged(run);
  const timeout = Number(run.reinit.timeout ?? 0);
  if (timeout && Date.now() - new Date(String(run.reinit.requested_at)).getTime() > timeout * 1000) {
    throw new SteepError(`the reinit did not begin within its timeout of ${timeout} s`, undefined, 'start it again when the node is less busy');
  }
  await checkTables(run);
  const recorded = await run.record('removing');
  if (recorded.cancel_requested) return endUnchanged(run);
  return true;
}

async function endUnchanged(run: ReinitRun): Promise<false> {
  await finishReinit(run.target, run.nodeId, { outcome: 'unchanged', details: { reason: 'cancelled' } });
  run.log('info', 'reinit.cancelled', { changed: false, state: run.reinit.previous_state, tables: run.labels });
  return false;
}

// a step that succeeds clears what a failed attempt recorded
const noError = { error: null, error_hint: null };

async function recopy(run: ReinitRun): Promise<void> {
  if (!run.reached('removed')) {
    const lsn = await removeFromPublication(run);
    await run.record('removed', { source_lsn: lsn, ...noError });
  }
  if (!run.reached('emptied')) {
    await emptyTables(run, String(run.reinit.source_lsn));
    await run.record('emptied', noError);
  }
  if (!run.reached('added')) {
    await addBack(run);
    await run.record('added', noError);
  }
  if (!run.reached('copied')) {
    await followCopy(run);
    await run.record('copied', noError);
  }
  // The tables are whole again: a cancel now only skips the verify.
  if (await run.cancelRequested()) {
    await finishReinit(run.target, run.nodeId, { outcome: 'recopied', details: { note: 'cancelled after the tables left the publication: fully re-copied, not verified' } });
    run.log('info', 'reinit.cancelled', { changed: true, recopied: true, tables: run.labels });
    return;
  }
  await verify(run);
}

// The last phase; the verify's end ends the reinit.
async function verify(run: ReinitRun): Promise<void> {
  const verifyId = await verifyReinit(run.target, run.nodeId, run.sourceNode.node_id, run.labels);
  run.log('info', 'reinit.verify_started', { verify_id: verifyId, tables: run.labels });
}
