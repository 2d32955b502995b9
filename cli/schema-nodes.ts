// The schema commands act on nodes named on the command line: each resolves
// through the registry of the --db database and is connected to directly.
import { Flags } from '@oclif/core';
import { Client } from 'pg';
import { connectToNode } from '../lib/connection';
import { ExitCode, notInstalledError, SteepError } from '../lib/errors';
import { TableDifference } from '../lib/schema-sync';
import { getNode, RegisteredNode } from '../lib/sql/getNode';

export const schemasFlag = Flags.string({
  description: 'only these schemas, comma-separated (default: every user schema)',
});

export function parseSchemas(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const schemas = value.split(',').map((s) => s.trim());
  if (schemas.some((s) => s === '')) throw new SteepError(`--schemas ${JSON.stringify(value)} names an empty schema`, ExitCode.badArguments);
  return schemas;
}

export async function resolveNodes(registry: Client, ids: string[]): Promise<RegisteredNode[]> {
  const nodes: RegisteredNode[] = [];
  for (const id of ids) nodes.push(await getNode(registry, id));
  return nodes;
}

// Connects to every node (all or none), runs fn, closes them. A node whose
// database lacks steep_repl gets an install hint instead of a SQL error.
export async function withNodes<R>(nodes: RegisteredNode[], applicationName: string, fn: (clients: Client[]) => Promise<R>): Promise<R> {
  const clients: Client[] = [];
  try {
    for (const node of nodes) {
      const client = await connectToNode(node, applicationName);
      clients.push(client);
      const { rows } = await client.query("SELECT to_regnamespace('steep_repl') IS NOT NULL AS installed");
      if (!rows[0].installed) throw notInstalledError(`node ${node.node_id} (${node.host}:${node.port}/${node.dbname})`);
    }
    return await fn(clients);
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}

// Counts per status for the summary line of compare and sync.
export function summarize(tables: TableDifference[], sourceNode: string, targetNode: string): string {
  const count = (status: string) => tables.filter((t) => t.status === status).length;
  const notReplicated = count('NOT_REPLICATED');
  return (
    `${tables.length} table${tables.length === 1 ? '' : 's'}: ${count('MATCH')} match, ${count('MISMATCH')} mismatch, ` +
    `${count('REMOTE_ONLY')} only on ${sourceNode}, ${count('LOCAL_ONLY')} only on ${targetNode}` +
    (notReplicated ? `, ${notReplicated} not replicated` : '')
  );
}
