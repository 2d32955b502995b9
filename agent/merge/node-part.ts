// A node's part in a merge as the node's own database records it
// (init_progress.merge): which merge, its step and how it ended.
import { Client } from 'pg';
import type { MergeNodeState } from '../../lib/sql/mergeStatus';

export async function readNodePart(db: Client, nodeId: string): Promise<MergeNodeState | undefined> {
  const { rows } = await db.query('SELECT merge FROM steep_repl.init_progress WHERE node_id = $1', [nodeId]);
  const part = rows[0]?.merge;
  return part ? { ...part, merge_id: Number(part.merge_id) } : undefined;
}
