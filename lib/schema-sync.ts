// The schema step every init runs before copying (SPEC §4.1): carry the
// source's fingerprint set to the target, let SQL on the target compare it,
// and act by mode. The comparison, the DDL plan and its application are SQL
// functions in migrations/functions (compare_fingerprints, schema_sync_plan,
// apply_schema_sync, ...).
import type { Client } from 'pg';
import { ExitCode, SteepError } from './errors';
import { shellWord } from './format';
import { tableLabel } from './identifiers';
import type { Logger } from './log';

export type SchemaSyncMode = 'strict' | 'auto' | 'manual';
export const schemaSyncModes: readonly SchemaSyncMode[] = ['strict', 'auto', 'manual'];

export type TableStatus = 'MATCH' | 'MISMATCH' | 'LOCAL_ONLY' | 'REMOTE_ONLY' | 'NOT_REPLICATED';

export interface ColumnDifference {
  kind: string;
  column?: string;
  source?: unknown;
  target?: unknown;
  detail: string;
  // not_replicated: why logical replication cannot carry the relation
  reason?: string;
}

// Statuses are from the target's view: REMOTE_ONLY = on the source only,
// LOCAL_ONLY = on the target only, NOT_REPLICATED = the source's relation
// is one logical replication cannot carry (unlogged, foreign, materialized
// view, an unlogged or foreign partition). blocking: stops a strict init
// (MISMATCH, REMOTE_ONLY, NOT_REPLICATED); a table only on the target never
// blocks.
export interface TableDifference {
  schema_name: string;
  table_name: string;
  status: TableStatus;
  differences: ColumnDifference[];
  blocking?: boolean;
  source_fingerprint?: string | null;
  target_fingerprint?: string | null;
}

export interface SchemaSyncOptions {
  source: Client;
  target: Client;
  sourceNodeId: string;
  targetNodeId: string;
  mode: SchemaSyncMode;
  schemas?: string[];
  dryRun?: boolean;
  confirm?: (differences: TableDifference[]) => Promise<boolean>;
  logger?: Logger;
}

export interface NotReplicatedRelation {
  schema_name: string;
  table_name: string;
  reason: string;
}

export interface SchemaSyncResult {
  outcome: 'match' | 'applied' | 'planned' | 'confirmed';
  differences: TableDifference[];
  ddl: string[];
  // the source's relations an init goes ahead without (auto, manual)
  notReplicated: NotReplicatedRelation[];
}

export function notReplicatedOf(tables: TableDifference[]): NotReplicatedRelation[] {
  return tables
    .filter((t) => t.status === 'NOT_REPLICATED')
    .map((t) => ({
      schema_name: t.schema_name,
      table_name: t.table_name,
      reason: t.differences.find((d) => d.kind === 'not_replicated')?.reason ?? 'not replicated',
    }));
}

// "public.scratch (unlogged table), public.mv (materialized view)"
export function describeNotReplicated(relations: NotReplicatedRelation[]): string {
  return relations.map((r) => `${tableLabel(r)} (${r.reason})`).join(', ');
}

export type FingerprintSet = unknown[];

// The set a node sends to its peer (steep_repl.fingerprint_set). With
// requireSchemas false a filter may name a schema that exists only on the peer.
export async function fingerprintSet(client: Client, schemas?: string[], requireSchemas = true): Promise<FingerprintSet> {
  const { rows } = await client.query('SELECT steep_repl.fingerprint_set($1::text[], $2) AS set', [schemas ?? null, requireSchemas]);
  return rows[0].set;
}

// Every table of both sides, compared on the target (steep_repl.compare_fingerprints).
export async function compareFingerprints(target: Client, sourceSet: FingerprintSet, schemas?: string[]): Promise<TableDifference[]> {
  const { rows } = await target.query('SELECT * FROM steep_repl.compare_fingerprints($1::jsonb, $2::text[])', [
    JSON.stringify(sourceSet),
    schemas ?? null,
  ]);
  return rows;
}

export function describeDifferences(tables: TableDifference[]): string {
  return tables
    .flatMap((t) => t.differences.map((d) => `  ${tableLabel(t)}: ${d.detail}`))
    .join('\n');
}

function mismatchError(options: SchemaSyncOptions, blocking: TableDifference[], hint: string): SteepError {
  const count = blocking.length;
  return new SteepError(
    `schema of node ${options.targetNodeId} differs from node ${options.sourceNodeId} ` +
      `(${count} table${count === 1 ? '' : 's'}, mode ${options.mode}):\n${describeDifferences(blocking)}`,
    ExitCode.schemaMismatch,
    hint,
  );
}

export async function syncSchema(options: SchemaSyncOptions): Promise<SchemaSyncResult> {
  const { source, target, sourceNodeId, targetNodeId, mode, logger } = options;
  if (!schemaSyncModes.includes(mode)) {
    throw new SteepError(`unknown schema sync mode ${JSON.stringify(mode)}: use strict, auto or manual`, ExitCode.badArguments);
  }
  const schemas = options.schemas?.length ? options.schemas : undefined;
  const sourceSet = await fingerprintSet(source, schemas);
  const payload = JSON.stringify(sourceSet);
  const { rows } = await target.query<TableDifference>(
    'SELECT * FROM steep_repl.detect_schema_drift($1::jsonb, $2::text[], $3, $4, $5)',
    [payload, schemas ?? null, sourceNodeId, targetNodeId, mode],
  );
  const differences = rows.filter((r) => r.status !== 'MATCH');
  const blocking = rows.filter((r) => r.blocking);
  const notReplicated = notReplicatedOf(rows);
  if (blocking.length === 0) return { outcome: 'match', differences, ddl: [], notReplicated };

  logger?.log('warn', 'schema.mismatch_detected', {
    source_node: sourceNodeId,
    target_node: targetNodeId,
    mode,
    tables: blocking.map((t) => ({ schema_name: t.schema_name, table_name: t.table_name, status: t.status, differences: t.differences.length })),
  });

  if (mode === 'strict') {
    const hint = notReplicated.length
      ? 'logical replication cannot carry the NOT_REPLICATED relations: do what each line says (an unlogged table: ALTER TABLE ... SET LOGGED ' +
        'on the source), or initialize without them in schema sync mode auto or manual; align any other difference, or let auto apply the DDL plan'
      : 'align the schemas, or use schema sync mode auto (apply the DDL plan) or manual (confirm and proceed)';
    throw mismatchError(options, blocking, hint);
  }
  if (mode === 'manual') {
    // A table the target lacks cannot receive rows: no confirmation makes
    // the copy work, so say which and what to do before anything is created.
    const missing = blocking.filter((t) => t.status === 'REMOTE_ONLY');
    if (missing.length) {
      throw new SteepError(
        `${missing.length} table${missing.length === 1 ? '' : 's'} of node ${sourceNodeId} ${missing.length === 1 ? 'is' : 'are'} missing on node ${targetNodeId}, ` +
          `which cannot receive ${missing.length === 1 ? 'its' : 'their'} rows: ${missing.map(tableLabel).join(', ')}`,
        ExitCode.schemaMismatch,
        `create ${missing.length === 1 ? 'it' : 'them'} on node ${targetNodeId} (steep-repl schema sync ${shellWord(targetNodeId)} --from ${shellWord(sourceNodeId)} --mode auto --dry-run ` +
          'prints the DDL), or use schema sync mode auto; nothing was changed',
      );
    }
    if (!options.confirm) throw mismatchError(options, blocking, 'manual mode needs a confirmation (--yes in scripts)');
    if (!(await options.confirm(differences))) throw mismatchError(options, blocking, 'not confirmed; nothing was changed');
    return { outcome: 'confirmed', differences, ddl: [], notReplicated };
  }
  if (options.dryRun) {
    const plan = await target.query('SELECT ddl FROM steep_repl.schema_sync_plan($1::jsonb, $2::text[]) ORDER BY step', [payload, schemas ?? null]);
    return { outcome: 'planned', differences, ddl: plan.rows.map((r) => r.ddl), notReplicated };
  }
  // One statement, so one transaction: a failing step or a re-compare that
  // still differs raises and rolls every step back.
  const applied = await target
    .query('SELECT ddl FROM steep_repl.apply_schema_sync($1::jsonb, $2::text[], $3, $4) ORDER BY step', [
      payload,
      schemas ?? null,
      sourceNodeId,
      targetNodeId,
    ])
    .catch((err: Error & { code?: string; detail?: string; hint?: string }) => {
      if (err.code !== 'SR005') throw err;
      const detail = err.detail ? `\n${err.detail}` : '';
      throw new SteepError(`schema sync on node ${targetNodeId} failed: ${err.message}${detail}`, ExitCode.schemaMismatch, err.hint);
    });
  const ddl = applied.rows.map((r) => r.ddl);
  // Only relations logical replication cannot carry, nothing to create: nothing was applied.
  if (!ddl.length) return { outcome: 'match', differences, ddl, notReplicated };
  logger?.log('info', 'schema.sync_applied', { source_node: sourceNodeId, target_node: targetNodeId, statements: ddl.length });
  return { outcome: 'applied', differences, ddl, notReplicated };
}
