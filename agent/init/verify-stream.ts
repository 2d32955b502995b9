// Whether an init really streams what it planned, checked after the copy and
// again after catch-up, before anything says SYNCHRONIZED: on the source,
// the publication exists (the one the plan made: same oid) and covers
// exactly the planned tables (by relation oid, so a table renamed there is
// named old -> new); on the target, the subscription (by oid) is enabled,
// subscribes to that publication, its apply worker runs and
// pg_subscription_rel has every planned table ready; the slot is in use and
// has confirmed the catch-up target. Every method ends with these checks.
import { Client } from 'pg';
import { SteepError } from '../../lib/errors';
import { shellWord } from '../../lib/format';
import { tableLabel } from '../../lib/identifiers';
import { MethodState, SourcePublication } from '../../lib/sql/getInitStatus';
import { getSlotLag } from '../../lib/sql/getSlotLag';
import { LabelledTable, sameTable, TableName } from '../../lib/sql/queryable';
import type { RegisteredNode } from '../../lib/sql/getNode';

// What the checks need of a run (InitRun has it).
export interface StreamRun {
  readonly nodeId: string;
  readonly target: Client;
  readonly sourceNode: RegisteredNode;
  readonly state: MethodState;
  withSource<T>(fn: (source: Client) => Promise<T>): Promise<T>;
  pause(ms: number): Promise<void>;
  checkpoint(): void;
  record(facts: Partial<Omit<MethodState, 'updated_at'>>): Promise<void>;
}

// How long the subscription's worker and the slot may take to be seen at work
// (a worker restarts wal_retrieve_retry_interval, 5 s, after an error).
const workerWaitMs = Number(process.env.STEEP_REPL_STREAM_CHECK_MS ?? 20000);

const label = (schema_name: string, table_name: string) => tableLabel({ schema_name, table_name });

export class StreamBroken extends SteepError {
  constructor(readonly problems: string[], hint: string) {
    super(problems.join('; '), undefined, hint);
    this.name = 'StreamBroken';
  }
}

// The publication as the source has it now, with its tables' oids: what the
// plan records right after creating it.
export async function readSourcePublication(source: Client, name: string): Promise<SourcePublication | null> {
  const { rows } = await source.query(
    `SELECT p.oid::int8::float8 AS oid,
            coalesce((SELECT jsonb_agg(jsonb_build_object('relid', c.oid::int8, 'schema_name', n.nspname, 'table_name', c.relname)
                                       ORDER BY n.nspname, c.relname)
                      FROM pg_publication_tables pt
                      JOIN pg_namespace n ON n.nspname = pt.schemaname
                      JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
                      WHERE pt.pubname = p.pubname), '[]') AS tables
     FROM pg_publication p WHERE p.pubname = $1`,
    [name],
  );
  if (!rows[0]) return null;
  return { oid: Number(rows[0].oid), tables: rows[0].tables.map((t: any) => ({ ...t, relid: Number(t.relid) })) };
}

// Source side: what is wrong with the publication, as sentences naming it.
// A table the init lists as skipped is not replicated: no check expects it.
const copied = <T extends TableName>(tables: T[]): T[] => tables.filter((t) => (t as { state?: string }).state !== 'skipped');

export async function publicationProblems(source: Client, run: Pick<StreamRun, 'state' | 'sourceNode'>, tables: TableName[]): Promise<string[]> {
  const planned = copied(tables);
  const name = run.state.replication_name;
  const recorded = run.state.source_publication;
  const where = `source node ${run.sourceNode.node_id}`;
  const { rows: pubs } = await source.query(
    'SELECT oid::int8::float8 AS oid, pubname FROM pg_publication WHERE pubname = $1 OR oid = $2::int8::oid',
    [name, recorded?.oid ?? null],
  );
  const byName = pubs.find((p) => p.pubname === name);
  const byOid = recorded ? pubs.find((p) => Number(p.oid) === recorded.oid) : byName;
  if (!byName && byOid) return [`the publication ${name} was renamed to ${byOid.pubname} on ${where} during the init, so the subscription's changes no longer stream`];
  if (!byName) return [`the publication ${name} no longer exists on ${where} (dropped there during the init), so changes no longer stream`];
  if (recorded && Number(byName.oid) !== recorded.oid) {
    return [`the publication ${name} on ${where} was dropped and created again during the init: changes written in between did not stream`];
  }

  const now = (await readSourcePublication(source, name))!;
  // Planned tables by oid as the plan recorded them; an init recorded before
  // oids were kept compares names.
  const plannedTables = recorded?.tables ?? now.tables.filter((t) => planned.some((p) => sameTable(p, t)));
  const problems: string[] = [];
  if (!recorded) {
    for (const p of planned) {
      if (!now.tables.some((t) => sameTable(t, p))) {
        problems.push(`the table ${label(p.schema_name, p.table_name)} is no longer in the publication ${name} on ${where}`);
      }
    }
  }
  const plannedOids = plannedTables.map((t) => t.relid);
  const { rows: current } = await source.query(
    `SELECT c.oid::int8::float8 AS relid, n.nspname AS schema_name, c.relname AS table_name
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY ($1::int8[]::oid[])`,
    [plannedOids],
  );
  for (const t of plannedTables) {
    const old = label(t.schema_name, t.table_name);
    const nowNamed = current.find((c) => Number(c.relid) === t.relid);
    const published = now.tables.find((p) => p.relid === t.relid);
    const renamed = nowNamed && (nowNamed.schema_name !== t.schema_name || nowNamed.table_name !== t.table_name);
    const newName = nowNamed && label(nowNamed.schema_name, nowNamed.table_name);
    if (!nowNamed) problems.push(`the table ${old} was dropped on ${where} during the init`);
    else if (renamed && published) problems.push(`the table ${old} was renamed to ${newName} on ${where} during the init (${old} → ${newName}); its changes stream under a name this node does not have`);
    else if (renamed) problems.push(`the table ${old} was renamed to ${newName} and removed from the publication ${name} on ${where}`);
    else if (!published) problems.push(`the table ${old} was removed from the publication ${name} on ${where}`);
  }
  for (const t of now.tables.filter((t) => !plannedOids.includes(t.relid))) {
    if (!recorded && planned.some((p) => sameTable(p, t))) continue;
    problems.push(`the table ${label(t.schema_name, t.table_name)} was added to the publication ${name} on ${where}; the init did not copy it`);
  }
  return problems;
}

interface SubscriptionFacts {
  oid: number;
  name: string;
  enabled: boolean;
  publications: string[];
  apply_pid: number | null;
  errors: number;
  tables: Array<{ label: string; state: string }>;
}

// The apply worker: worker_type = 'apply' from PostgreSQL 17; before, the
// worker without a table (relid) that is no parallel apply worker (16's
// leader_pid), read through to_jsonb so one query runs on 15 to 18.
async function subscriptionFacts(target: Client, state: MethodState): Promise<SubscriptionFacts | undefined> {
  const { rows } = await target.query(
    `SELECT s.oid::int8::float8 AS oid, s.subname AS name, s.subenabled AS enabled, s.subpublications AS publications,
            (SELECT w.pid FROM pg_stat_subscription w WHERE w.subid = s.oid AND w.pid IS NOT NULL
               AND coalesce(to_jsonb(w) ->> 'worker_type', CASE WHEN w.relid IS NULL AND to_jsonb(w) ->> 'leader_pid' IS NULL THEN 'apply' END) = 'apply'
             LIMIT 1) AS apply_pid,
            (SELECT coalesce(sum(e.sync_error_count + e.apply_error_count), 0)::int FROM pg_stat_subscription_stats e WHERE e.subid = s.oid) AS errors,
            coalesce((SELECT jsonb_agg(jsonb_build_object('label', format('%I.%I', n.nspname, c.relname), 'state', sr.srsubstate))
                      FROM pg_subscription_rel sr JOIN pg_class c ON c.oid = sr.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE sr.srsubid = s.oid), '[]') AS tables
     FROM pg_subscription s
     WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND (s.oid = $2::int8::oid OR ($2 IS NULL AND s.subname = $1))`,
    [state.replication_name, state.subscription_oid ?? null],
  );
  return rows[0] && { ...rows[0], oid: Number(rows[0].oid) };
}

const substates: Record<string, string> = { i: 'not started', d: 'copying', f: 'copied, not yet synchronized', s: 'synchronized, not yet ready', r: 'ready' };

// Target side. Problems a moment fixes (a worker restarting, a table just
// finishing) are "transient": the caller waits for them a while.
function subscriptionProblems(facts: SubscriptionFacts | undefined, run: StreamRun, tables: LabelledTable[]): { lasting: string[]; transient: string[] } {
  const planned = copied(tables);
  const name = run.state.replication_name;
  if (!facts) return { lasting: [`the subscription ${name} no longer exists on node ${run.nodeId}`], transient: [] };
  const sub = facts.name === name ? `the subscription ${name}` : `the subscription ${name} (renamed to ${facts.name})`;
  const lasting: string[] = [];
  const transient: string[] = [];
  if (!facts.enabled) lasting.push(`${sub} is disabled on node ${run.nodeId}`);
  if (!facts.publications.includes(name)) lasting.push(`${sub} no longer subscribes to the publication ${name} (it has ${facts.publications.join(', ') || 'none'})`);
  if (facts.enabled && !facts.apply_pid) {
    transient.push(`${sub} has no apply worker running on node ${run.nodeId}${facts.errors ? ` (${facts.errors} worker errors so far: the reason is in that server's log)` : ''}`);
  }
  const missing = planned.filter((t) => !facts.tables.some((s) => s.label === t.label));
  if (missing.length) lasting.push(`${sub} does not carry ${missing.map((t) => t.label).join(', ')}`);
  const extra = facts.tables.filter((s) => !planned.some((t) => t.label === s.label));
  if (extra.length) lasting.push(`${sub} carries tables the init did not plan: ${extra.map((t) => t.label).join(', ')}`);
  const notReady = facts.tables.filter((s) => s.state !== 'r' && planned.some((t) => t.label === s.label));
  if (notReady.length) transient.push(`not ready on node ${run.nodeId}: ${notReady.map((t) => `${t.label} (${substates[t.state] ?? t.state})`).join(', ')}`);
  return { lasting, transient };
}

// Throws StreamBroken naming everything that is wrong, with what to do.
// stage: 'after the copy' | 'after catch-up'. lsnTarget: the slot must have
// confirmed it (after catch-up).
export async function verifyStream(run: StreamRun, planned: LabelledTable[], stage: string, lsnTarget?: string | null): Promise<void> {
  const slot = run.state.slot_name ?? run.state.replication_name;
  const deadline = Date.now() + workerWaitMs;
  for (;;) {
    run.checkpoint();
    const onSource = await run.withSource((s) => publicationProblems(s, run, planned));
    if (onSource.length) throw new StreamBroken(onSource.map((p) => `${stage}: ${p}`), publicationHint(run));
    const target = subscriptionProblems(await subscriptionFacts(run.target, run.state), run, planned);
    if (target.lasting.length) throw new StreamBroken([...target.lasting, ...target.transient].map((p) => `${stage}: ${p}`), subscriptionHint(run));
    const lag = await run.withSource((s) => getSlotLag(s, slot, lsnTarget ?? null));
    const slotProblems: string[] = [];
    if (!lag.slot_exists) {
      throw new StreamBroken([`${stage}: the slot ${slot} no longer exists on source node ${run.sourceNode.node_id}`], subscriptionHint(run));
    }
    if (!lag.active) slotProblems.push(`the slot ${slot} on source node ${run.sourceNode.node_id} is not in use by the subscription`);
    if (lsnTarget && !lag.reached) slotProblems.push(`the slot ${slot} has not confirmed ${lsnTarget} (at ${lag.confirmed_lsn ?? 'nothing'})`);
    const waiting = [...target.transient, ...slotProblems];
    if (!waiting.length) return;
    if (Date.now() > deadline) throw new StreamBroken(waiting.map((p) => `${stage}: ${p}`), subscriptionHint(run));
    await run.pause(250);
  }
}

// During a copy, what no waiting mends: the publication changed on the
// source, the subscription disabled, dropped or pointed elsewhere on the
// target. (Tables not yet ready are the copy itself.)
export async function checkWhileCopying(run: StreamRun, planned: LabelledTable[]): Promise<void> {
  const onSource = await run.withSource((s) => publicationProblems(s, run, planned));
  if (onSource.length) throw new StreamBroken(onSource.map((p) => `while copying: ${p}`), publicationHint(run));
  const { lasting } = subscriptionProblems(await subscriptionFacts(run.target, run.state), run, planned);
  if (lasting.length) throw new StreamBroken(lasting.map((p) => `while copying: ${p}`), subscriptionHint(run));
}

const cancelThenStart = (run: StreamRun) =>
  `cancel this init (steep-repl node cancel ${shellWord(run.nodeId)}) and start it again (steep-repl node start ${shellWord(run.nodeId)} --from ${shellWord(run.sourceNode.node_id)})`;

function publicationHint(run: StreamRun): string {
  return `changes written on the source since then did not reach this node, so its data cannot be trusted: ${cancelThenStart(run)}; keep the publication ${run.state.replication_name} and the source's tables as they are while an init runs`;
}

function subscriptionHint(run: StreamRun): string {
  return `the subscription is the init's: leave it to steep-repl; look at the target server's log for its workers' errors, fix the cause and resume (steep-repl node start ${shellWord(run.nodeId)} --from ${shellWord(run.sourceNode.node_id)} --resume enables it again), or ${cancelThenStart(run)}`;
}
