// Exit codes (SPEC §4.8) and the mapping from errors to them. SQL functions
// raise SQLSTATEs of class SR (see migrations), so the mapping needs no
// message parsing.
import { ConnectionError, ConnectionStringError, redactSecrets } from './connection';

export const ExitCode = {
  ok: 0,
  error: 1,
  badArguments: 2,
  schemaMismatch: 3,
  cancelled: 4,
  timeout: 5,
  connection: 6,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class SteepError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue = ExitCode.error,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'SteepError';
  }
}

// A steep_repl object that does not exist means the schema was never
// installed in that database.
export function isNotInstalled(err: unknown): boolean {
  const e = err as PgErrorLike;
  return ['42P01', '3F000', '42883'].includes(e?.code ?? '') && /steep_repl|graphile_worker/.test(e.message ?? '');
}

export function notInstalledError(where: string): SteepError {
  return new SteepError(
    `steep_repl is not installed in ${where}`,
    ExitCode.error,
    `run: steep-repl install --db <url of ${where}>`,
  );
}

interface PgErrorLike {
  code?: string;
  hint?: string;
  message: string;
}

export function isConnectionFailure(err: PgErrorLike): boolean {
  const code = err.code ?? '';
  return (
    err instanceof ConnectionError ||
    code.startsWith('08') ||
    code.startsWith('28') ||
    code === '3D000' ||
    code.startsWith('57P') ||
    ['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EAI_AGAIN'].includes(code) ||
    /Connection terminated|timeout expired/i.test(err.message)
  );
}

export function exitCodeFor(err: unknown): ExitCodeValue {
  if (err instanceof SteepError) return err.exitCode;
  if (err instanceof ConnectionStringError) return ExitCode.badArguments;
  const e = err as PgErrorLike;
  if (isConnectionFailure(e)) return ExitCode.connection;
  switch (e.code) {
    case 'SR001':
    case 'SR004':
    case '23514':
    case '22P02':
    case '22023':
      return ExitCode.badArguments;
    case 'SR005':
      return ExitCode.schemaMismatch;
    case '57014':
      return ExitCode.cancelled;
    default:
      return ExitCode.error;
  }
}

// An error as a DBA reads it: what failed and what to do next, no secrets.
export function errorFields(err: unknown): { error: string; hint?: string } {
  const e = err as PgErrorLike;
  const hint =
    e?.hint ??
    (err instanceof SteepError || err instanceof ConnectionError ? err.hint : undefined) ??
    (e?.code === '42501'
      ? 'connect as a role with rights on the steep_repl schema: the one that ran steep-repl install, or grant it'
      : undefined);
  const message = e?.message || String(err);
  return { error: redactSecrets(message), ...(hint ? { hint: redactSecrets(hint) } : {}) };
}

export function describeError(err: unknown): string {
  const { error, hint } = errorFields(err);
  return hint ? `${error}\nhint: ${hint}` : error;
}
