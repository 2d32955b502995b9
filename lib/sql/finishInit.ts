import { Queryable } from './queryable';

export type FailureKind = 'schema_mismatch' | 'timeout' | 'connection' | 'error';

// What the agent found of the init on the source when it failed: looked at
// (checked, with what is there) or not reachable (why, and what may be there).
export interface SourceFacts {
  checked: boolean;
  objects: Array<{ kind: string; name: string }>;
  error?: string;
  may_exist?: Array<{ kind: string; name: string }>;
}

export type InitOutcome =
  | { outcome: 'completed'; details?: Record<string, unknown> }
  // the message recorded adds what exists and how to resume (steep_repl.init_failure_message)
  | { outcome: 'failed'; error: string; kind: FailureKind; hint?: string; on_source?: SourceFacts }
  | { outcome: 'cancelled'; details?: Record<string, unknown> };

export async function finishInit(db: Queryable, nodeId: string, end: InitOutcome): Promise<void> {
  const details =
    end.outcome === 'failed'
      ? {
          error: end.error,
          kind: end.kind,
          hint: end.hint,
          // names only: the statements stay with the cancel
          on_source: end.on_source && {
            checked: end.on_source.checked,
            objects: end.on_source.objects.map(({ kind, name }) => ({ kind, name })),
            error: end.on_source.error,
            may_exist: end.on_source.may_exist?.map(({ kind, name }) => ({ kind, name })),
          },
        }
      : (end.details ?? {});
  await db.query('SELECT steep_repl.finish_init($1, $2, $3)', [nodeId, end.outcome, details]);
}
