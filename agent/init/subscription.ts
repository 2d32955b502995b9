// The subscription on the target that does the copy (copy_data = true) and
// then streams; origin = none so a bidirectional pair never loops.
import { Client } from 'pg';
import { ident, literal } from './quoting';

export interface SubscriptionRow {
  oid: number;
  enabled: boolean;
  slot_name: string | null;
}

export async function findSubscription(target: Client, name: string): Promise<SubscriptionRow | undefined> {
  const { rows } = await target.query(
    `SELECT oid::int8::float8 AS oid, subenabled AS enabled, subslotname AS slot_name FROM pg_subscription
     WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [name],
  );
  return rows[0] && { ...rows[0], oid: Number(rows[0].oid) };
}

// streaming = parallel applies large source transactions with parallel
// workers while they are still open, which shortens catch-up after the copy.
export async function createSubscription(target: Client, name: string, conninfo: string, copyData: boolean): Promise<void> {
  await target.query(
    `CREATE SUBSCRIPTION ${ident(name)} CONNECTION ${literal(conninfo)} PUBLICATION ${ident(name)}
     WITH (copy_data = ${copyData}, origin = none, streaming = parallel, slot_name = ${literal(name)})`,
  );
}

export async function setSubscriptionEnabled(target: Client, name: string, enabled: boolean): Promise<void> {
  await target.query(`ALTER SUBSCRIPTION ${ident(name)} ${enabled ? 'ENABLE' : 'DISABLE'}`);
}

// DROP SUBSCRIPTION also drops its slot and the table-sync slots on the
// source. When the source cannot be reached the subscription is detached
// from its slot first, so dropping it here still works; the caller removes
// the slot on the source later.
export async function dropSubscription(target: Client, name: string): Promise<'dropped_with_slot' | 'dropped_without_slot' | 'absent'> {
  if (!(await findSubscription(target, name))) return 'absent';
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

export async function applyParallel(target: Client, parallel: number | null): Promise<{ workersMax: number; changedFrom?: number }> {
  const current = await syncWorkerLimit(target);
  if (!parallel || parallel === current) return { workersMax: current };
  await target.query(`ALTER SYSTEM SET max_sync_workers_per_subscription = ${Number(parallel)}`);
  await target.query('SELECT pg_reload_conf()');
  return { workersMax: parallel, changedFrom: current };
}
