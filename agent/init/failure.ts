// Turns an error into what init_progress records: a kind clients map to an
// exit code, and a message that says what to do next.
import { ConnectionError, redactSecrets } from '../../lib/connection';
import { ExitCode, SteepError } from '../../lib/errors';

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

export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    err instanceof ConnectionError ||
    err instanceof SourceUnreachable ||
    /^(08|57P)/.test(e.code ?? '') ||
    ['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE'].includes(e.code ?? '') ||
    /Connection terminated|connection (is )?closed|Client was closed|not queryable/i.test(e.message ?? '')
  );
}

export function classify(err: unknown): FailureKind {
  if (err instanceof SteepError && err.exitCode === ExitCode.schemaMismatch) return 'schema_mismatch';
  if ((err as { code?: string }).code === 'SR005') return 'schema_mismatch';
  if (err instanceof InitTimeout) return 'timeout';
  if (isConnectionError(err)) return 'connection';
  return 'error';
}
