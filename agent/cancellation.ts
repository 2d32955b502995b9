// Per-job cancel: graphile-worker has none, so each running job gets an
// AbortController that a NOTIFY on steep_repl_cancel triggers.
export interface CancelRequest {
  node_id?: string | null;
  job_id?: string | number | null;
}

interface RunningJob {
  jobId: string;
  nodeId?: string;
  controller: AbortController;
}

export class CancellationRegistry {
  private readonly running = new Map<string, RunningJob>();

  register(jobId: string, nodeId?: string): AbortSignal {
    const controller = new AbortController();
    this.running.set(jobId, { jobId, nodeId, controller });
    return controller.signal;
  }

  release(jobId: string): void {
    this.running.delete(jobId);
  }

  // Returns the ids of the jobs it aborted.
  cancel(request: CancelRequest): string[] {
    const aborted: string[] = [];
    for (const job of this.running.values()) {
      const byJob = request.job_id != null && String(request.job_id) === job.jobId;
      const byNode = request.job_id == null && request.node_id != null && request.node_id === job.nodeId;
      if (byJob || byNode) {
        job.controller.abort(new Error(`cancelled by request for ${byJob ? `job ${job.jobId}` : `node ${job.nodeId}`}`));
        aborted.push(job.jobId);
      }
    }
    return aborted;
  }
}
