// The names of a merge's replication objects: A → B's publication, slot
// (on A) and subscription (on B) share replication_name(A, B), as any
// pair's do; B → A's replication_name(B, A).
import { Queryable } from '../../lib/sql/queryable';
import { getReplicationName } from '../../lib/sql/getReplicationName';

export interface PairNames {
  // on A: publication and slot; on B: subscription
  ab: string;
  // on B: publication and slot; on A: subscription
  ba: string;
}

export async function pairNames(db: Queryable, nodeA: string, nodeB: string): Promise<PairNames> {
  return { ab: await getReplicationName(db, nodeA, nodeB), ba: await getReplicationName(db, nodeB, nodeA) };
}
