// The subscription on the target: it streams the pair's publication from a
// slot on the source, origin = none so a bidirectional pair never loops (any
// for a cascade from a source that forwards what it receives).
import { Client } from 'pg';
import { serverVersionNum } from '../../lib/sql/serverVersionNum';
import { ident, literal } from './quoting';

export interface SubscriptionRow {
  oid: number;
  name: string;
  enabled: boolean;
  slot_name: string | null;
}

// By the oid an init recorded when there is one (the name may have been
// changed since), else by name.
export async function findSubscription(target: Client, name: string, oid?: number | null): Promise<SubscriptionRow | undefined> {
  const { rows } = await target.query(
    `SELECT oid::int8::float8 AS oid, subname AS name, subenabled AS enabled, subslotname AS slot_name FROM pg_subscription
     WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND (oid = $2::int8::oid OR ($2 IS NULL AND subname = $1))`,
    [name, oid ?? null],
  );
  return rows[0] && { ...rows[0], oid: Number(rows[0].oid) };
}

export interface SubscriptionSpec {
  name: string;
  conninfo: string;
  publication: string;
  slotName: string;
  // true: PostgreSQL's table sync copies every table first
  copyData: boolean;
  // false: stream from a slot that exists already (made at a copy's
  // consistent point, or prepared for this init), starting exactly where it stands
  createSlot: boolean;
  // none (default): only the source's own changes, so a bidirectional pair
  // never loops; any: also what the source received from others (a
  // cascade); null: the option left out (PostgreSQL 15 has none, and sends
  // everything)
  origin?: 'none' | 'any' | null;
  // false: made disabled, so its origin can be set before it streams (a
  // manual init's handover point); it connects once enabled
  enabled?: boolean;
}

// streaming = parallel (16+) applies large source transactions with parallel
// workers while they are still open, which shortens catch-up after the copy.
export async function createSubscription(target: Client, spec: SubscriptionSpec): Promise<SubscriptionRow> {
  const version = await serverVersionNum(target);
  const origin = spec.origin === undefined ? 'none' : spec.origin;
  if (origin && version < 160000) throw new Error(`origin = ${origin} needs PostgreSQL 16 or later on the subscriber`);
  await target.query(
    `CREATE SUBSCRIPTION ${ident(spec.name)} CONNECTION ${literal(spec.conninfo)} PUBLICATION ${ident(spec.publication)}
     WITH (copy_data = ${spec.copyData}, create_slot = ${spec.createSlot}, slot_name = ${literal(spec.slotName)},
           ${origin ? `origin = ${origin}, ` : ''}${spec.enabled === false ? 'enabled = false, ' : ''}streaming = ${version >= 160000 ? 'parallel' : 'on'})`,
  );
  return (await findSubscription(target, spec.name))!;
}

export async function setSubscriptionEnabled(target: Client, name: string, enabled: boolean): Promise<void> {
  await target.query(`ALTER SUBSCRIPTION ${ident(name)} ${enabled ? 'ENABLE' : 'DISABLE'}`);
}

// DROP SUBSCRIPTION also drops its slot and the table-sync slots on the
// source. When the source cannot be reached the subscription is detached
// from its slot first, so dropping it here still works; the caller removes
// the slot on the source later.
export async function dropSubscription(target: Client, name: string): Promise<'dropped_with_slot' | 'dropped_without_slot'> {
  try {
    await target.query(`DROP SUBSCRIPTION IF EXISTS ${ident(name)}`);
    return 'dropped_with_slot';
  } catch {
    await target.query(`ALTER SUBSCRIPTION ${ident(name)} DISABLE`);
    await target.query(`ALTER SUBSCRIPTION ${ident(name)} SET (slot_name = NONE)`);
    await target.query(`DROP SUBSCRIPTION IF EXISTS ${ident(name)}`);
    return 'dropped_without_slot';
  }
}

// The table-sync worker limit is a server setting (sighup), not a
// subscription option: --parallel sets it with ALTER SYSTEM and a reload.
// It applies to every subscription of the target's server.
export async function syncWorkerLimit(target: Client): Promise<number> {
  return Number((await target.query('SHOW max_sync_workers_per_subscription')).rows[0].max_sync_workers_per_subscription);
}

// The value to put back: the one ALTER SYSTEM had written (postgresql.auto.conf,
// as pg_file_settings reads it now), else the value from postgresql.conf or
// the default, which RESET brings back.
export interface SyncWorkersBefore {
  sync_workers_before: number;
  sync_workers_before_altered: boolean;
}

// The value ALTER SYSTEM wrote, as the server's files hold it now; null: none.
async function alteredSyncWorkers(target: Client): Promise<number | null> {
  const { rows } = await target.query(
    `SELECT f.setting::int AS setting FROM pg_file_settings f
     WHERE f.name = 'max_sync_workers_per_subscription' AND f.sourcefile LIKE '%postgresql.auto.conf' AND f.error IS NULL
     ORDER BY f.seqno DESC LIMIT 1`,
  );
  return rows[0]?.setting ?? null;
}

async function syncWorkersBefore(target: Client): Promise<SyncWorkersBefore> {
  const altered = await alteredSyncWorkers(target);
  return altered === null
    ? { sync_workers_before: await syncWorkerLimit(target), sync_workers_before_altered: false }
    : { sync_workers_before: altered, sync_workers_before_altered: true };
}

// remember records the earlier value before the change (init_method_state),
// so a crash right after it still knows what to put back; a value already
// remembered (a resumed run) is kept.
export async function applyParallel(
  target: Client,
  parallel: number | null | undefined,
  remember?: (before: SyncWorkersBefore) => Promise<void>,
): Promise<{ workersMax: number; changedFrom?: number }> {
  const current = await syncWorkerLimit(target);
  if (!parallel || parallel === current) return { workersMax: current };
  await remember?.(await syncWorkersBefore(target));
  await target.query(`ALTER SYSTEM SET max_sync_workers_per_subscription = ${Number(parallel)}`);
  await target.query('SELECT pg_reload_conf()');
  return { workersMax: parallel, changedFrom: current };
}

export interface SyncWorkersRestore {
  setting: 'max_sync_workers_per_subscription';
  // what the init had set (null: not known), and what the server has again (ALTER SYSTEM SET or RESET)
  from: number | null;
  to: number;
  via: 'ALTER SYSTEM SET' | 'ALTER SYSTEM RESET';
}

// Puts back what applyParallel changed, when the init completes, fails or is
// cancelled. Someone who changed the setting again in the meantime (the
// server's file no longer holds the init's value) wins: left as it is.
export async function restoreSyncWorkers(
  target: Client,
  before: { sync_workers_before?: number | null; sync_workers_before_altered?: boolean | null },
  initValue: number | null | undefined,
): Promise<SyncWorkersRestore | { skipped: string } | undefined> {
  if (before.sync_workers_before === null || before.sync_workers_before === undefined) return undefined;
  const inFile = await alteredSyncWorkers(target);
  if (initValue && inFile !== initValue) {
    return { skipped: `max_sync_workers_per_subscription was changed again since the init set it to ${initValue} (now ${inFile ?? 'not set with ALTER SYSTEM'}); left as it is` };
  }
  const via = before.sync_workers_before_altered ? 'ALTER SYSTEM SET' : 'ALTER SYSTEM RESET';
  if (before.sync_workers_before_altered) {
    await target.query(`ALTER SYSTEM SET max_sync_workers_per_subscription = ${Number(before.sync_workers_before)}`);
  } else {
    await target.query('ALTER SYSTEM RESET max_sync_workers_per_subscription');
  }
  await target.query('SELECT pg_reload_conf()');
  return {
    setting: 'max_sync_workers_per_subscription',
    from: initValue ?? inFile,
    to: Number(before.sync_workers_before),
    via,
  };
}

// The subscription takes the publication's tables as they are now: tables
// that left are dropped from it (their table-sync state and origins with
// them), new ones are added and, with copyData, copied by PostgreSQL's
// table sync. The target's server connects to the source for the list.
export async function refreshSubscription(target: Client, name: string, copyData: boolean): Promise<void> {
  await target.query(`ALTER SUBSCRIPTION ${ident(name)} REFRESH PUBLICATION WITH (copy_data = ${copyData})`);
}
