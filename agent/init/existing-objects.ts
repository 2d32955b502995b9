// What of an init exists right now, looked up on each side rather than
// assumed: the subscription on the target (by the oid the init recorded,
// so a rename does not hide it) and its replication origin; the
// publication (by oid or name) and the slots on the source. A failure and a
// cancel report what this finds, never what they hope.
import { Client } from 'pg';
import { MethodState } from '../../lib/sql/getInitStatus';
import { ident, literal } from '../replication/quoting';

export interface ExistingObject {
  // subscription, replication origin, publication, slot; slots for a set
  kind: string;
  name: string;
  // the statement that removes it, run on the side it is on
  drop: string;
}

export interface OnSource {
  // false: the source could not be reached, so nothing there was looked at
  checked: boolean;
  objects: ExistingObject[];
  // when not checked: why, and what may exist there
  error?: string;
  may_exist?: ExistingObject[];
}

// The slots an init's subscription may have made: its own and PostgreSQL's
// table-sync slots (pg_<subscription oid>_sync_<relid>_<system id>).
export function slotPatterns(state: MethodState, subscriptionOid?: number | null, subscriptionSlot?: string | null) {
  const names = [...new Set([state.slot_name ?? state.replication_name, ...(subscriptionSlot ? [subscriptionSlot] : [])])];
  const oid = subscriptionOid ?? state.subscription_oid;
  return { names, like: oid ? [`pg\\_${oid}\\_sync\\_%`] : [] };
}

export async function onTarget(target: Client, state: MethodState): Promise<ExistingObject[]> {
  const { rows } = await target.query(
    `SELECT s.oid::int8::float8 AS oid, s.subname,
            (SELECT o.roname FROM pg_replication_origin o WHERE o.roname = 'pg_' || s.oid) AS origin
     FROM pg_subscription s
     WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND (s.oid = $2::int8::oid OR s.subname = $1)`,
    [state.replication_name, state.subscription_oid ?? null],
  );
  const found: ExistingObject[] = rows.map((r) => ({
    kind: 'subscription',
    name: r.subname,
    drop: `ALTER SUBSCRIPTION ${ident(r.subname)} DISABLE; ALTER SUBSCRIPTION ${ident(r.subname)} SET (slot_name = NONE); DROP SUBSCRIPTION ${ident(r.subname)}`,
  }));
  // The origin goes with its subscription; one without it is a leftover.
  if (state.subscription_oid && !rows.some((r) => Number(r.oid) === Number(state.subscription_oid))) {
    const origin = `pg_${state.subscription_oid}`;
    const left = await target.query('SELECT roname FROM pg_replication_origin WHERE roname = $1', [origin]);
    if (left.rows.length) found.push({ kind: 'replication origin', name: origin, drop: `SELECT pg_replication_origin_drop(${literal(origin)})` });
  }
  return found;
}

// Run on the source: the publication (renamed or not) and the slots.
export async function onSourceObjects(source: Client, state: MethodState, subscriptionOid?: number | null): Promise<ExistingObject[]> {
  const found: ExistingObject[] = [];
  const pubs = await source.query('SELECT pubname FROM pg_publication WHERE pubname = $1 OR oid = $2::int8::oid', [
    state.replication_name,
    state.source_publication?.oid ?? null,
  ]);
  for (const { pubname } of pubs.rows) found.push({ kind: 'publication', name: pubname, drop: `DROP PUBLICATION IF EXISTS ${ident(pubname)}` });
  const { names, like } = slotPatterns(state, subscriptionOid);
  const slots = await source.query(
    `SELECT slot_name FROM pg_replication_slots
     WHERE database = current_database() AND (slot_name = ANY ($1::text[]) OR slot_name LIKE ANY ($2::text[]))`,
    [names, like],
  );
  for (const { slot_name } of slots.rows) {
    found.push({ kind: 'slot', name: slot_name, drop: `SELECT pg_drop_replication_slot(${literal(slot_name)})` });
  }
  return found;
}

// What may be on a source nobody could look at: what the init would have made there.
export function mayExistOnSource(state: MethodState, subscriptionOid?: number | null): ExistingObject[] {
  const { names, like } = slotPatterns(state, subscriptionOid);
  const patterns = [...names.map((n) => `slot_name = ${literal(n)}`), ...like.map((p) => `slot_name LIKE ${literal(p)}`)].join(' OR ');
  return [
    { kind: 'slots', name: `${names.join(', ')}${like.length ? ' and its table-sync slots' : ''}`, drop: `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE ${patterns}` },
    { kind: 'publication', name: state.replication_name, drop: `DROP PUBLICATION IF EXISTS ${ident(state.replication_name)}` },
  ];
}

// "slot x: SELECT pg_drop_replication_slot('x')": what node cancel prints to run.
export const dropLine = (o: ExistingObject): string => `${o.kind}: ${o.drop}`;
