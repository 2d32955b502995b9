import { Queryable } from './queryable';

// What the last cancel of a node found left after its cleanup
// (init.cancelled details), each as "kind: statement to run": on the source
// (looked at there, or, when it could not be reached, what may be there)
// and on the target.
export interface LeftBehind {
  // false: the source could not be reached, so on_source is what may be there
  source_checked: boolean;
  on_source: string[];
  on_target: string[];
}

export async function getLeftBehind(db: Queryable, nodeId: string): Promise<LeftBehind> {
  const { rows } = await db.query(
    `SELECT details FROM steep_repl.audit_log
     WHERE node_id = $1 AND event = 'init.cancelled' ORDER BY audit_id DESC LIMIT 1`,
    [nodeId],
  );
  const details = rows[0]?.details ?? {};
  const onSource: string[] = details.left_on_source ?? [];
  return {
    // a cancel recorded before source_checked existed listed only what it could not reach
    source_checked: details.source_checked ?? onSource.length === 0,
    on_source: onSource,
    on_target: details.left_on_target ?? [],
  };
}

