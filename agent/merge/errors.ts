// A merge that cannot go on, with its failure kind (merge_runs.failure_kind:
// what front ends map to an exit code) and what to do next.
import type { MergeFailureKind } from '../../lib/sql/mergeStatus';

export class MergeError extends Error {
  constructor(
    message: string,
    readonly kind: MergeFailureKind,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'MergeError';
  }
}

// The run was cancelled (merge_runs.cancel_requested_at, a node's
// init_progress.cancel_requested_at or the job's cancel).
export class MergeCancelled extends Error {
  constructor(readonly by: string) {
    super(`cancel requested (${by})`);
    this.name = 'MergeCancelled';
  }
}
