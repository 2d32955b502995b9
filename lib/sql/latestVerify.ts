import { Queryable } from './queryable';
import { VerifyStatus } from './getVerifyStatus';

// The node's most recent verify; null when it never had one.
export async function latestVerify(db: Queryable, nodeId: string): Promise<VerifyStatus | null> {
  return (await db.query('SELECT steep_repl.latest_verify($1) AS r', [nodeId])).rows[0].r;
}
