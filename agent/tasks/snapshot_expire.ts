// The expiry of a snapshot generated on this node, queued for its
// expires_at when it became ready: its slot stops retaining WAL (and its
// publication goes unless an apply streams through it); the files stay
// until snapshot delete. SQL does it (steep_repl.expire_snapshot, which
// emits snapshot.expired); a snapshot whose expiry was moved later is
// queued again for then.
import { expireSnapshot } from '../../lib/sql/snapshots';
import { SteepTask } from '../task';

export const snapshot_expire: SteepTask = async (payload, ctx) => {
  const snapshotId = String(payload.snapshot_id);
  const outcome = await expireSnapshot(ctx.helpers, snapshotId);
  ctx.logger.log(outcome === 'expired' ? 'warn' : 'info', 'snapshot.expire_checked', { snapshot_id: snapshotId, outcome, job_id: ctx.jobId });
};
