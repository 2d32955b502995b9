import type { MergeMode, MergeStrategy } from './mergeStatus';
import { Queryable } from './queryable';

export interface MergeRequest {
  nodeA: string;
  nodeB: string;
  // read-only counts; no strategy with it
  analyze?: boolean;
  strategy?: MergeStrategy;
  // last-modified only: a timestamptz, timestamp or date column of every table
  column?: string;
  dry_run?: boolean;
  // manual only: apply the resolutions of the latest record run
  apply?: boolean;
  // names as steep_repl.scope_tables reads them ('s.t', 't', '"Odd Name"'), or a schema
  tables?: string[];
  schema?: string;
  quiesce?: boolean;
  // seconds or an interval text, up to a day (default 3600 s)
  timeout?: number | string;
}

export interface MergeStarted {
  merge_id: number;
  node_a: string;
  node_b: string;
  mode: MergeMode;
  strategy: MergeStrategy | null;
  // labels, as format('%I.%I') writes them
  tables: string[];
  job_id: number;
  follow: { status: string; channels: string[]; cancel: string };
}

const optionKeys = ['analyze', 'strategy', 'column', 'dry_run', 'apply', 'tables', 'schema', 'quiesce', 'timeout'] as const;

// Runs on node A's database (start_merge refuses anywhere else).
export async function startMerge(db: Queryable, request: MergeRequest): Promise<MergeStarted> {
  const options: Record<string, unknown> = {};
  for (const key of optionKeys) if (request[key] !== undefined) options[key] = request[key];
  return (await db.query('SELECT steep_repl.start_merge($1, $2, $3) AS r', [request.nodeA, request.nodeB, options])).rows[0].r;
}
