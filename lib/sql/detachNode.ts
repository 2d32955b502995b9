import { Queryable } from './queryable';

// A steep-repl replication object a database holds for a pair with a peer
// (steep_repl.replication_objects): direction 'from' streams from the
// peer, 'to' is what the peer streams (or will stream) from.
export interface ReplicationObject {
  kind: 'subscription' | 'publication' | 'slot' | 'prepared slot';
  name: string;
  peer_node: string;
  direction: 'from' | 'to';
  drop_statement: string;
}

// Every peer when nodeId is the local node (or omitted), else that peer only.
export async function listReplicationObjects(db: Queryable, nodeId?: string): Promise<ReplicationObject[]> {
  return (await db.query('SELECT * FROM steep_repl.replication_objects($1) ORDER BY kind, name', [nodeId ?? null])).rows;
}

export interface DetachRequested {
  node_id: string;
  job_id: number;
  state: string;
  // what the node's own database holds now
  objects: ReplicationObject[];
  follow: string;
}

export async function detachNode(db: Queryable, nodeId: string): Promise<DetachRequested> {
  return (await db.query('SELECT steep_repl.detach_node($1) AS r', [nodeId])).rows[0].r;
}

// What node.detached records: each side the detach reached, what it removed
// there and what a check found left afterwards.
export interface DetachOutcome {
  job_id: string;
  reason?: string;
  removed: string[];
  left: string[];
  checked: string[];
  // peers that could not be reached: what may be left there is unknown
  unreachable: Array<{ node_id: string; error: string; check: string }>;
  detached_peers?: string[];
  // node.detach_failed
  error?: string;
  hint?: string;
}

export async function finishDetach(db: Queryable, nodeId: string, details: Record<string, unknown>): Promise<void> {
  await db.query('SELECT steep_repl.finish_detach($1, $2)', [nodeId, details]);
}

// The outcome of one detach job, once its agent recorded it.
export async function getDetachOutcome(db: Queryable, nodeId: string, jobId: number | string): Promise<{ event: string; details: DetachOutcome } | undefined> {
  const { rows } = await db.query(
    `SELECT event, details FROM steep_repl.audit_log
     WHERE node_id = $1 AND event IN ('node.detached', 'node.detach_failed') AND details ->> 'job_id' = $2
     ORDER BY audit_id DESC LIMIT 1`,
    [nodeId, String(jobId)],
  );
  return rows[0];
}
