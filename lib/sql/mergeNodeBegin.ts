import type { MergeNodeState, MergeStrategy } from './mergeStatus';
import { Queryable } from './queryable';

export interface MergeNodeBeginRequest {
  merge_id: number;
  coordinator: string;
  role: 'a' | 'b';
  strategy: MergeStrategy | null;
  tables_total: number;
}

// On the node's own database: the node enters the merge (preparing) or,
// for a merge it is in already (a resumed job), returns it as it is.
export async function mergeNodeBegin(
  db: Queryable,
  nodeId: string,
  peer: string,
  merge: MergeNodeBeginRequest,
): Promise<MergeNodeState & { resumed: boolean; node_state: string }> {
  return (await db.query('SELECT steep_repl.merge_node_begin($1, $2, $3) AS r', [nodeId, peer, merge])).rows[0].r;
}
