// Turns an error into what init_progress records: a kind clients map to an
// exit code, and a message that says what to do next.
import { Client } from 'pg';
import { redactSecrets } from '../../lib/connection';
import { ExitCode, isConnectionFailure, SteepError } from '../../lib/errors';
import type { RegisteredNode } from '../../lib/sql/getNode';

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

// How long the source may be unreachable before an init or a reinit fails.
export const sourceGraceMs = Number(process.env.STEEP_REPL_SOURCE_GRACE_MS ?? 15000);

// A run's session to its source, as withRetriedSource uses it.
export interface SourceSession {
  node: RegisteredNode;
  // the session open now, if any
  current(): Client | undefined;
  // opens one and keeps it
  open(): Promise<Client>;
  // ends the one kept and forgets it
  drop(): Promise<void>;
  // between two attempts; throws when the run must stop
  wait(): Promise<void>;
  // the first time the source is found away in a call
  away(where: string, err: Error): void;
  // a run stopping gives up at once
  stopping?(): boolean;
}

// Runs fn on the source, reconnecting while the source is away (a restart,
// a dropped link); after the grace period the run fails with SourceUnreachable.
export async function withRetriedSource<T>(session: SourceSession, fn: (source: Client) => Promise<T>): Promise<T> {
  const deadline = Date.now() + sourceGraceMs;
  let warned = false;
  for (;;) {
    try {
      return await fn(session.current() ?? (await session.open()));
    } catch (err) {
      if (!isConnectionError(err) || session.stopping?.()) throw err;
      await session.drop();
      const { node } = session;
      const where = `${node.node_id} (${node.host}:${node.port}/${node.dbname})`;
      if (Date.now() > deadline) throw new SourceUnreachable(where, err as Error);
      if (!warned) session.away(where, err as Error);
      warned = true;
      await session.wait();
    }
  }
}

export function classify(err: unknown): FailureKind {
  if (err instanceof SteepError && err.exitCode === ExitCode.schemaMismatch) return 'schema_mismatch';
  if ((err as { code?: string }).code === 'SR005') return 'schema_mismatch';
  if (err instanceof InitTimeout) return 'timeout';
  if (isConnectionError(err)) return 'connection';
  return 'error';
}
