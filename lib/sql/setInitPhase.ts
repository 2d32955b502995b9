import { Queryable } from './queryable';

// Moves the init to a phase of its method; a repeated call is a no-op.
export async function setInitPhase(db: Queryable, nodeId: string, phase: string, details: Record<string, unknown> = {}): Promise<void> {
  await db.query('SELECT steep_repl.init_phase($1, $2, $3)', [nodeId, phase, details]);
}
