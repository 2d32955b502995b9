// Connection settings the libpq way: an explicit URL (--db), else
// STEEP_REPL_DB, else the PG* environment variables; passwords come from the
// URL, PGPASSWORD or pgpass and are never stored, logged or echoed.
import { Client, ClientConfig, escapeIdentifier } from 'pg';
import { parse as parseConnectionString } from 'pg-connection-string';

export interface ConnectionTarget {
  host: string;
  port: number;
  dbname: string;
  user?: string;
}

export function resolveConnectionString(explicit?: string): string | undefined {
  return explicit || process.env.STEEP_REPL_DB || undefined;
}

export function clientConfig(connectionString?: string, applicationName = 'steep-repl'): ClientConfig {
  const url = resolveConnectionString(connectionString);
  return {
    ...(url ? { connectionString: url } : {}),
    application_name: applicationName,
    connectionTimeoutMillis: Number(process.env.STEEP_REPL_CONNECT_TIMEOUT_MS ?? 10000),
  };
}

// Where a config points, for messages: host, port and database, no secrets.
export function describeTarget(connectionString?: string): string {
  const url = resolveConnectionString(connectionString);
  const parsed: Partial<ReturnType<typeof parseConnectionString>> = url ? parseConnectionString(url) : {};
  const host = parsed.host || process.env.PGHOST || 'localhost';
  const port = parsed.port || process.env.PGPORT || '5432';
  const dbname = parsed.database || process.env.PGDATABASE || parsed.user || process.env.PGUSER || 'postgres';
  return `${host}:${port}/${dbname}`;
}

export function nodeClientConfig(node: ConnectionTarget, applicationName = 'steep-repl'): ClientConfig {
  return {
    host: node.host,
    port: node.port,
    database: node.dbname,
    ...(node.user ? { user: node.user } : {}),
    application_name: applicationName,
    connectionTimeoutMillis: Number(process.env.STEEP_REPL_CONNECT_TIMEOUT_MS ?? 10000),
  };
}

// A libpq conninfo for a server-side connection (a subscription). It never
// carries a password: the server uses its own pgpass.
export function nodeConninfo(node: ConnectionTarget): string {
  const quote = (v: string | number) => `'${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const parts = [`host=${quote(node.host)}`, `port=${quote(node.port)}`, `dbname=${quote(node.dbname)}`];
  if (node.user) parts.push(`user=${quote(node.user)}`);
  return parts.join(' ');
}

export async function connect(config: ClientConfig, describe: string): Promise<Client> {
  const client = new Client(config);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new ConnectionError(describe, err as Error);
  }
  return client;
}

export function connectTo(connectionString?: string, applicationName?: string): Promise<Client> {
  return connect(clientConfig(connectionString, applicationName), describeTarget(connectionString));
}

export function connectToNode(node: ConnectionTarget & { node_id?: string }, applicationName?: string): Promise<Client> {
  const where = `${node.node_id ? `node ${node.node_id} at ` : ''}${node.host}:${node.port}/${node.dbname}`;
  return connect(nodeClientConfig(node, applicationName), where);
}

export class ConnectionError extends Error {
  constructor(
    readonly target: string,
    cause: Error,
  ) {
    super(`cannot connect to ${target}: ${redactSecrets(cause.message)}`);
    this.name = 'ConnectionError';
  }
}

// Removes anything that looks like a password from text meant for people.
export function redactSecrets(text: string): string {
  return text
    .replace(/(postgres(?:ql)?:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1***@')
    .replace(/(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)/gi, '$1***');
}

export { escapeIdentifier };
