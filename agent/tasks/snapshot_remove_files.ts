// The files of a deleted snapshot, removed by the agent of the node that
// wrote them (queued by steep_repl.delete_snapshot): manifest.json,
// schema.sql, sequences.json and its parts' files (with any .tmp of them),
// then data/ and the directory if nothing else is in them. Nothing else in
// the directory is touched; files of a snapshot whose slot was never made
// were never written (its directory may be someone else's), so there only
// an empty data/ and directory go.
import { getSnapshotStatus, listSnapshotParts } from '../../lib/sql/snapshots';
import { removeSnapshotFiles } from '../snapshot/files';
import { SteepTask } from '../task';

export const snapshot_remove_files: SteepTask = async (payload, ctx) => {
  const snapshotId = String(payload.snapshot_id);
  const status = await getSnapshotStatus(ctx.helpers, snapshotId);
  if (status.state !== 'deleted') {
    ctx.logger.log('warn', 'snapshot.files_kept', { snapshot_id: snapshotId, reason: `the snapshot is ${status.state}, not deleted`, job_id: ctx.jobId });
    return;
  }
  const wrote = status.consistent_lsn !== null;
  const parts = wrote ? await listSnapshotParts(ctx.helpers, snapshotId) : [];
  const result = await removeSnapshotFiles(status.output_dir, parts.map((p) => p.file_name), { topFiles: wrote });
  ctx.logger.log(result.missingDir ? 'warn' : 'info', 'snapshot.files_removed', {
    snapshot_id: snapshotId,
    output_dir: status.output_dir,
    files: result.removed.length,
    dir_removed: result.dirRemoved,
    ...(result.missingDir ? { note: 'the directory is not there (moved, or on another machine): nothing to remove' } : {}),
    job_id: ctx.jobId,
  });
};
