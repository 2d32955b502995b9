// What every steep-repl task receives besides its payload.
import { JobHelpers } from 'graphile-worker';
import { Logger } from '../lib/log';

export interface TaskContext {
  jobId: string;
  // Aborted by a cancel request for this job or its node (steep_repl_cancel).
  cancel: AbortSignal;
  // Aborted when the agent shuts down: leave the state as it is, the job
  // runs again when an agent starts.
  shutdown: AbortSignal;
  logger: Logger;
  // The agent's own database, for tasks that open more connections to it.
  connectionString?: string;
  helpers: JobHelpers;
}

export type SteepTask = (payload: Record<string, unknown>, ctx: TaskContext) => Promise<void>;
