// The subscription on the target: it streams the pair's publication from a
// slot on the source, origin = none so a bidirectional pair never loops.
import { Client } from 'pg';
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
  // consistent point), starting exactly where it stands
  createSlot: boolean;
}

// streaming = parallel applies large source transactions with parallel
// workers while they are still open, which shortens catch-up after the copy.
export async function createSubscription(target: Client, spec: SubscriptionSpec): Promise<SubscriptionRow> {
  await target.query(
    `CREATE SUBSCRIPTION ${ident(spec.name)} CONNECTION ${literal(spec.conninfo)} PUBLICATION ${ident(spec.publication)}
     WITH (copy_data = ${spec.copyData}, create_slot = ${spec.createSlot}, slot_name = ${literal(spec.slotName)},
           origin = none, streaming = parallel)`,
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

export async function applyParallel(target: Client, parallel: number | null | undefined): Promise<{ workersMax: number; changedFrom?: number }> {
  const current = await syncWorkerLimit(target);
  if (!parallel || parallel === current) return { workersMax: current };
  await target.query(`ALTER SYSTEM SET max_sync_workers_per_subscription = ${Number(parallel)}`);
  await target.query('SELECT pg_reload_conf()');
  return { workersMax: parallel, changedFrom: current };
}
