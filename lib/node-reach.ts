// Reading another node's own database from a front end (the live view,
// node list, node status): at its registry address, with short timeouts, so
// a node that is down costs seconds and marks only its own row.
import { ClientConfig } from 'pg';
import { nodeClientConfig, redactSecrets } from './connection';
import type { NodeOverview } from './sql/listNodes';

// A node that does not answer within this long is unreachable.
export const peerTimeouts = { connectionTimeoutMillis: 3000, query_timeout: 5000 };

// A registered node's own database, reached as the registry names it.
export function peerConfig(row: Pick<NodeOverview, 'host' | 'port' | 'dbname' | 'user_name'>, applicationName: string): ClientConfig {
  return {
    ...nodeClientConfig({ host: row.host, port: row.port, dbname: row.dbname, user: row.user_name ?? undefined }, applicationName),
    ...peerTimeouts,
  };
}

// A server that answers with an SQL error is reachable; only a lost or
// refused connection, or none in time, is not.
export function answered(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code !== undefined && !/^(08|57P)/.test(code);
}

// What went wrong there, for people: never a password.
export function problemOf(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e.code === '42P01' || e.code === '3F000') return 'steep_repl is not installed there';
  return redactSecrets(e.message ?? String(err));
}
