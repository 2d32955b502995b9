import { Queryable } from './queryable';

export interface VerifyRequest {
  node: string;
  // default: the node's source (init_source_node)
  peer?: string | null;
  // names as steep_repl.scope_tables reads them ('s.t', 't', '"Odd Name"'), or a schema
  tables?: string[];
  schema?: string;
  // differing keys kept per table (1..1000000, default 1000)
  key_limit?: number;
  reason?: 'verify' | 'reinit';
}

export interface VerifyStarted {
  verify_id: number;
  node_id: string;
  peer_node_id: string;
  reason: 'verify' | 'reinit';
  key_limit: number;
  // labels, as format('%I.%I') writes them
  tables: string[];
  job_id: number;
  follow: { status: string; channels: string[]; cancel: string };
}

// Runs on the node's own database (start_verify refuses anywhere else).
export async function startVerify(db: Queryable, request: VerifyRequest): Promise<VerifyStarted> {
  const options: Record<string, unknown> = {};
  for (const key of ['tables', 'schema', 'key_limit', 'reason'] as const) if (request[key] !== undefined) options[key] = request[key];
  return (await db.query('SELECT steep_repl.start_verify($1, $2, $3) AS r', [request.node, request.peer ?? null, options])).rows[0].r;
}
