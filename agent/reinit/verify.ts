// A reinit's last phase: the re-copied tables (every table for --full)
// verified against the source by a verify job (steep_repl.start_verify with
// reason reinit); its finish_verify ends the reinit (finish_reinit).
import { Queryable } from '../../lib/sql/queryable';
import { recordReinitStep } from '../../lib/sql/recordReinitStep';
import { setInitPhase } from '../../lib/sql/setInitPhase';

// Started once: a verify a killed run queued already is the one. tables:
// labels, or none for every table the node receives. Returns its id.
export async function verifyReinit(db: Queryable, nodeId: string, sourceId: string, tables?: string[]): Promise<number> {
  await setInitPhase(db, nodeId, 'verifying');
  const { rows } = await db.query(
    "SELECT max(verify_id)::int8::float8 AS id FROM steep_repl.verify_runs WHERE node_id = $1 AND reason = 'reinit' AND state IN ('queued', 'running')",
    [nodeId],
  );
  let verifyId: number | null = rows[0].id;
  if (!verifyId) {
    const options = tables ? { tables, reason: 'reinit' } : { reason: 'reinit' };
    verifyId = Number((await db.query('SELECT steep_repl.start_verify($1, $2, $3) AS v', [nodeId, sourceId, options])).rows[0].v.verify_id);
  }
  const recorded = await recordReinitStep(db, nodeId, 'verifying', { verify_id: verifyId });
  // a cancel that came while the verify was being queued did not see it
  if (recorded.cancel_requested) await db.query('SELECT steep_repl.cancel_verify($1)', [nodeId]);
  return verifyId;
}
