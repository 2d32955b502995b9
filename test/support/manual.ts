// What the manual init tests read on both sides: everything a refused node
// complete must leave as it was, the prepared slot on the source, and the
// recovery settings node prepare printed.
import { query } from './clusters';
import type { NodeDb } from './node-pair';

export interface ManualState {
  target: {
    // every registry row's init fields (a copy's reset moves is_local)
    nodes: unknown[];
    progress: unknown[];
    methodState: unknown[];
    jobs: number;
    subscriptions: string[];
    publications: string[];
    audit: number;
  };
  source: {
    row: unknown;
    slot: unknown;
    // node prepare's snapshot holders (pg_dump)
    holders: number;
    publications: string[];
    audit: number;
  };
}

// Both sides as a refusal must leave them (no timestamps that move by
// themselves: the agents' heartbeats, the slot's restart position).
export async function manualState(source: NodeDb, target: { url: string }, slotName: string): Promise<ManualState> {
  const hasSteepRepl = async (url: string) => (await query(url, "SELECT to_regclass('steep_repl.nodes') IS NOT NULL AS ok"))[0].ok;
  const t = target.url;
  const targetSide = (await hasSteepRepl(t))
    ? {
        nodes: await query(t, 'SELECT node_id, is_local, init_state, init_source_node, init_started_at FROM steep_repl.nodes ORDER BY node_id'),
        progress: await query(t, 'SELECT node_id, source_node_id, method, phase, error, job_id, options FROM steep_repl.init_progress ORDER BY node_id'),
        methodState: await query(t, "SELECT to_jsonb(m) - 'updated_at' AS m FROM steep_repl.init_method_state m ORDER BY node_id"),
        jobs: (await query(t, 'SELECT count(*)::int AS n FROM graphile_worker._private_jobs'))[0].n,
        audit: (await query(t, 'SELECT count(*)::int AS n FROM steep_repl.audit_log'))[0].n,
      }
    : { nodes: [], progress: [], methodState: [], jobs: 0, audit: 0 };
  return {
    target: {
      ...targetSide,
      subscriptions: (await query(t, 'SELECT subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY 1')).map(
        (r) => r.subname,
      ),
      publications: (await query(t, 'SELECT pubname FROM pg_publication ORDER BY 1')).map((r) => r.pubname),
    },
    source: {
      row: (await query(source.url, 'SELECT to_jsonb(i) AS row FROM steep_repl.init_slots i WHERE slot_name = $1', [slotName]))[0]?.row ?? null,
      slot: (await preparedSlot(source, slotName)) ?? null,
      holders: (await snapshotHolders(source)).length,
      publications: (await query(source.url, 'SELECT pubname FROM pg_publication ORDER BY 1')).map((r) => r.pubname),
      audit: (await query(source.url, 'SELECT count(*)::int AS n FROM steep_repl.audit_log'))[0].n,
    },
  };
}

export interface SlotFacts {
  active: boolean;
  application_name: string | null;
  confirmed_flush_lsn: string | null;
  wal_status: string | null;
}

// The slot on the source and who holds it.
export async function preparedSlot(source: NodeDb, slotName: string): Promise<SlotFacts | undefined> {
  const [slot] = await query(
    source.url,
    `SELECT s.active, a.application_name, s.confirmed_flush_lsn::text AS confirmed_flush_lsn, s.wal_status
     FROM pg_replication_slots s LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid WHERE s.slot_name = $1`,
    [slotName],
  );
  return slot;
}

// node prepare's replication connections holding an exported snapshot
// (the slot itself is not active meanwhile: the walsender released it).
export async function snapshotHolders(source: NodeDb): Promise<number[]> {
  return (await query(source.url, "SELECT pid FROM pg_stat_activity WHERE application_name = 'steep-repl prepare' AND datname = current_database() ORDER BY pid")).map(
    (r) => r.pid,
  );
}

// The indented settings lines of node prepare's output (`  name = value`)
// that a restore as a standby of the source takes: the recovery target, the
// apply workers' setting, primary_conninfo (not the archive's restore_command).
export function standbySettings(printed: string): string {
  return printed
    .split('\n')
    .filter((l) => /^\s+(recovery_target\w*|max_logical_replication_workers|primary_conninfo) = \S/.test(l))
    .map((l) => l.trim())
    .join('\n');
}

// a < b, compared as pg_lsn on the server
export async function lsnCompare(url: string, a: string, b: string): Promise<number> {
  return (await query(url, 'SELECT sign($1::pg_lsn - $2::pg_lsn)::int AS c', [a, b]))[0].c;
}

// The number of apply and sync errors of the database's subscriptions: a
// change that arrived twice fails on its key and counts here.
export async function workerErrors(url: string): Promise<number> {
  return (await query(url, 'SELECT coalesce(sum(apply_error_count + sync_error_count), 0)::int AS n FROM pg_stat_subscription_stats'))[0].n;
}
