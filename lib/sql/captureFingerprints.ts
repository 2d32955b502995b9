import { Queryable } from './queryable';

export interface FingerprintsCaptured {
  tables: number;
  captured_at: Date;
}

// Stores the fingerprints of the node's user tables (all schemas, or those
// named) in its steep_repl.schema_fingerprints.
export async function captureFingerprints(db: Queryable, nodeId: string, schemas?: string[]): Promise<FingerprintsCaptured> {
  const { rows } = await db.query('SELECT steep_repl.capture_fingerprints($1, $2::text[]) AS tables, now() AS captured_at', [
    nodeId,
    schemas ?? null,
  ]);
  return rows[0];
}
