// Connection settings the libpq way: an explicit URL (--db), else
// STEEP_REPL_DB, else the PG* environment variables; passwords come from the
// URL, PGPASSWORD or pgpass and are never stored, logged or echoed.
import { Client, ClientConfig, defaults as pgDefaults, escapeIdentifier } from 'pg';
import { parse as parseConnectionString } from 'pg-connection-string';

export interface ConnectionTarget {
  host: string;
  port: number;
  dbname: string;
  user?: string;
}

export function resolveConnectionString(explicit?: string): string | undefined {
  const url = explicit || process.env.STEEP_REPL_DB || undefined;
  if (url !== undefined) checkConnectionString(url, explicit ? '--db' : 'STEEP_REPL_DB');
  return url;
}

// node-postgres reads URLs only; a libpq keyword/value string or a broken URL
// would otherwise turn into a confusing host name. The text may hold a
// password, so the message never repeats it.
function checkConnectionString(url: string, from: string): void {
  const example = 'postgres://user@host:5432/dbname (percent-encode special characters)';
  if (!/^(postgres(ql)?:\/\/|socket:)/i.test(url) && !url.startsWith('/')) {
    throw new ConnectionStringError(`${from} is not a connection URL: expected ${example}`);
  }
  try {
    parseConnectionString(url);
  } catch {
    throw new ConnectionStringError(`${from} is not a valid connection URL: expected ${example}`);
  }
}

export class ConnectionStringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectionStringError';
  }
}

export function clientConfig(connectionString?: string, applicationName = 'steep-repl'): ClientConfig {
  const url = resolveConnectionString(connectionString);
  return {
    ...(url ? { connectionString: url } : {}),
    application_name: applicationName,
    connectionTimeoutMillis: connectTimeoutMs(),
    // A long-lived session (the agent's) notices a vanished peer in seconds, not hours.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10000,
  };
}

// STEEP_REPL_CONNECT_TIMEOUT_MS, default 10 s: how long a connection attempt may take.
export function connectTimeoutMs(): number {
  const ms = Number(process.env.STEEP_REPL_CONNECT_TIMEOUT_MS);
  return Number.isFinite(ms) && ms > 0 ? ms : 10000;
}

// Where a config points, for messages: host, port and database, no secrets.
export function describeTarget(connectionString?: string): string {
  const url = resolveConnectionString(connectionString);
  const parsed: Partial<ReturnType<typeof parseConnectionString>> = url ? parseConnectionString(url) : {};
  const host = parsed.host || process.env.PGHOST || 'localhost';
  const port = parsed.port || process.env.PGPORT || '5432';
  // node-postgres' own fallbacks: the user is PGUSER or the OS user, the database the user's name.
  const dbname = parsed.database || process.env.PGDATABASE || parsed.user || process.env.PGUSER || pgDefaults.user || 'postgres';
  return `${host}:${port}/${dbname}`;
}

export function nodeClientConfig(node: ConnectionTarget, applicationName = 'steep-repl'): ClientConfig {
  return {
    host: node.host,
    port: node.port,
    database: node.dbname,
    ...(node.user ? { user: node.user } : {}),
    application_name: applicationName,
    connectionTimeoutMillis: connectTimeoutMs(),
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

// A signal aborts the attempt, and later any query, by destroying the socket:
// pg has no abort of its own.
export async function connect(config: ClientConfig, describe: string, signal?: AbortSignal): Promise<Client> {
  signal?.throwIfAborted();
  const client = new Client(config);
  // A server that goes away fails the pending query; without a listener the
  // client's 'error' event would also crash the process.
  client.on('error', () => undefined);
  const abort = () => (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  signal?.addEventListener('abort', abort, { once: true });
  client.once('end', () => signal?.removeEventListener('abort', abort));
  try {
    await client.connect();
  } catch (err) {
    signal?.removeEventListener('abort', abort);
    await client.end().catch(() => undefined);
    if (signal?.aborted) throw signal.reason;
    throw new ConnectionError(describe, err as Error);
  }
  return client;
}

export function connectTo(connectionString?: string, applicationName?: string): Promise<Client> {
  return connect(clientConfig(connectionString, applicationName), describeTarget(connectionString));
}

export function connectToNode(
  node: ConnectionTarget & { node_id?: string },
  applicationName?: string,
  signal?: AbortSignal,
): Promise<Client> {
  const where = `${node.node_id ? `node ${node.node_id} at ` : ''}${node.host}:${node.port}/${node.dbname}`;
  return connect(nodeClientConfig(node, applicationName), where, signal);
}

export class ConnectionError extends Error {
  readonly hint: string;
  constructor(
    readonly target: string,
    cause: Error & { code?: string },
  ) {
    super(`cannot connect to ${target}: ${redactSecrets(cause.message)}`);
    this.name = 'ConnectionError';
    this.hint = connectionHint(cause.code);
  }
}

// What a DBA checks next, by the kind of failure.
function connectionHint(code?: string): string {
  if (code === '28P01' || code === '28000') {
    return 'check the user and the password: from the URL, PGPASSWORD or the pgpass file (PGPASSFILE, mode 0600)';
  }
  if (code === '3D000') return 'check the database name in the URL or PGDATABASE; steep-repl does not create databases';
  if (code?.startsWith('57P')) return 'the server is starting up or shutting down; retry when it accepts connections';
  return 'check that the server runs and accepts TCP connections at that address; it comes from --db, else STEEP_REPL_DB, else PGHOST/PGPORT/PGDATABASE/PGUSER';
}

// Removes anything that looks like a password from text meant for people.
export function redactSecrets(text: string): string {
  return text
    // Up to the last @ of the authority: a raw @ inside the password is cut too.
    .replace(/(postgres(?:ql)?:\/\/[^:/@\s]*:)[^\s/"]*@/gi, '$1***@')
    .replace(/(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)/gi, '$1***');
}

export { escapeIdentifier };
