// Writes a two-phase snapshot on the source, queued by
// steep_repl.generate_snapshot: see agent/snapshot/generate.ts. Its failures
// are recorded in the snapshot's row; only a stopping agent ends it with an
// error, so the job runs again (and resumes) when an agent starts.
import { generateSnapshot } from '../snapshot/generate';
import { SteepTask } from '../task';

export const snapshot_generate: SteepTask = async (payload, ctx) => {
  await generateSnapshot(ctx, String(payload.snapshot_id));
};
