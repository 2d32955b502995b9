import { Queryable } from './queryable';
import { InitOptions } from './getInitStatus';

export interface InitRequest {
  target: string;
  source: string;
  // default: snapshot, or on resume the method of the failed init
  method?: string | null;
  // option names as steep_repl.init_option_specs has them
  options?: Record<string, unknown>;
}

export interface InitStarted {
  node_id: string;
  source_node_id: string;
  method: string;
  state: string;
  job_id: number;
  options: InitOptions;
  replication_name: string;
  follow: { status: string; channels: string[]; cancel: string };
}

// Runs on the target's own database (start_init refuses anywhere else).
export async function startInit(db: Queryable, request: InitRequest): Promise<InitStarted> {
  const { rows } = await db.query('SELECT steep_repl.start_init($1, $2, $3, $4) AS r', [
    request.target,
    request.source,
    request.method ?? null,
    request.options ?? {},
  ]);
  return rows[0].r;
}
