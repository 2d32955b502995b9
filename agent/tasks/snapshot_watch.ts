// The watch over the slots of this node's live snapshots, every
// STEEP_REPL_SNAPSHOT_WATCH_SECONDS (60) while a snapshot is generating or
// ready: warns (snapshot.slot_at_risk, and a log line) of a slot retaining
// more than STEEP_REPL_SNAPSHOT_WAL_WARN_BYTES (1GB) of WAL or whose
// wal_status is unreserved; a ready snapshot whose slot was lost fails.
// SQL decides (steep_repl.watch_snapshot_slots); queued again while any
// snapshot is live.
import { watchSnapshotSlots } from '../../lib/sql/snapshots';
import { SteepTask } from '../task';

const watchSeconds = () => Number(process.env.STEEP_REPL_SNAPSHOT_WATCH_SECONDS ?? 60);
const warnBytes = () => Number(process.env.STEEP_REPL_SNAPSHOT_WAL_WARN_BYTES ?? 1024 ** 3);

export const snapshot_watch: SteepTask = async (_payload, ctx) => {
  const result = await watchSnapshotSlots(ctx.helpers, warnBytes());
  // the event (snapshot.slot_at_risk) is logged as every event is; this line says what it means
  for (const risk of result.at_risk.filter((r) => r.warned)) ctx.logger.log('warn', 'snapshot.wal_warning', { ...risk, job_id: ctx.jobId });
  for (const failed of result.failed) ctx.logger.log('error', 'snapshot.slot_lost', { ...failed, job_id: ctx.jobId });
  if (result.live > 0) {
    await ctx.helpers.query(
      "SELECT graphile_worker.add_job('snapshot_watch', '{}'::json, run_at => now() + make_interval(secs => $1), job_key => 'snapshot_watch', max_attempts => 5)",
      [watchSeconds()],
    );
  }
};
