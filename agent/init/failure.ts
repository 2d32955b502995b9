// Turns an error into what init_progress records: a kind clients map to an
// exit code, and a message that says what to do next.
import { redactSecrets } from '../../lib/connection';
import { ExitCode, isConnectionFailure, SteepError } from '../../lib/errors';

export type FailureKind = 'schema_mismatch' | 'timeout' | 'connection' | 'error';

export class InitTimeout extends Error {
  constructor(seconds: number) {
    super(`the initialization did not reach synchronized within its timeout of ${seconds} s`);
    this.name = 'InitTimeout';
  }
}

export class SourceUnreachable extends Error {
  constructor(readonly describe: string, cause: Error) {
    super(`source node ${describe} is unreachable: ${redactSecrets(cause.message)}`);
    this.name = 'SourceUnreachable';
  }
}

// What the CLI counts as a connection failure, and also a session of the
// agent's that broke mid-query, and a source whose grace period ran out.
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message: string };
  return (
    isConnectionFailure(e) ||
    err instanceof SourceUnreachable ||
    e.code === 'EPIPE' ||
    /connection (is )?closed|Client was closed|not queryable/i.test(e.message ?? '')
  );
}

export function classify(err: unknown): FailureKind {
  if (err instanceof SteepError && err.exitCode === ExitCode.schemaMismatch) return 'schema_mismatch';
  if ((err as { code?: string }).code === 'SR005') return 'schema_mismatch';
  if (err instanceof InitTimeout) return 'timeout';
  if (isConnectionError(err)) return 'connection';
  return 'error';
}
