// Where the data of a pair comes from and where it goes, read from both
// nodes before an init creates anything: the source's own registry row (is
// it the other side of this pair, is it still copying from somewhere), the
// subscriptions in the source database (does it forward what it receives),
// the target's own slots (does anything flow on from it), and the slots a
// node prepared for a later init (init_slots). From these the plan decides
// the subscription's origin, whether the reverse of a pair may start from a
// prepared slot, and what it must refuse.
import { Client } from 'pg';
import { SteepError } from '../../lib/errors';
import { shellWord } from '../../lib/format';
import { listPreparedSlots, PreparedSlot } from '../../lib/sql/listPreparedSlots';

export interface SourceSelf {
  node_id: string;
  init_state: string;
  init_source_node: string | null;
  // init_states.in_progress of its state
  in_progress: boolean;
}

export async function readSourceSelf(source: Client): Promise<SourceSelf | undefined> {
  const { rows } = await source.query("SELECT to_regclass('steep_repl.nodes') IS NOT NULL AS installed");
  if (!rows[0].installed) return undefined;
  const self = await source.query(
    `SELECT n.node_id, n.init_state, n.init_source_node, s.in_progress
     FROM steep_repl.nodes n JOIN steep_repl.init_states s ON s.state = n.init_state WHERE n.is_local`,
  );
  return self.rows[0];
}

// The reverse of an established pair: the source is synchronized from the
// target. Its copy would only duplicate rows the target already has.
export function isReverseOfPair(self: SourceSelf | undefined, sourceId: string, targetId: string): boolean {
  return !!self && self.node_id === sourceId && self.init_source_node === targetId && self.init_state === 'synchronized';
}

// A subscription in a node's database (steep_repl.upstream_subscriptions):
// from_node null for one steep-repl did not make.
export interface Upstream {
  subscription: string;
  from_node: string | null;
  origin: 'none' | 'any';
  enabled: boolean;
}

export async function readUpstreams(db: Client): Promise<Upstream[]> {
  return (await db.query('SELECT subscription, from_node, origin, enabled FROM steep_repl.upstream_subscriptions()')).rows;
}

// Logical slots in the target's database that some subscriber streams from
// (prepared slots nobody uses yet excepted): what the target sends on.
export async function downstreamSlots(target: Client): Promise<string[]> {
  const { rows } = await target.query(
    `SELECT slot_name FROM pg_replication_slots
     WHERE database = current_database() AND slot_type = 'logical'
       AND slot_name NOT IN (SELECT slot_name FROM steep_repl.init_slots)
     ORDER BY 1`,
  );
  return rows.map((r) => r.slot_name);
}

export async function findPreparedSlot(db: Client, slotName: string): Promise<PreparedSlot | undefined> {
  return (await listPreparedSlots(db)).find((s) => s.slot_name === slotName);
}

// On the node that will be the source: the init_slots row (with its
// expiry), then the slot as a statement of its own (prepare_slot.sql says
// why not inside the function), then its consistent point. A run killed in
// between finds the row without an LSN and finishes it: a slot of that name
// made after the row is ours, and nothing subscribed through it (a reverse
// init needs the LSN), so its confirmed position is still where it began.
export async function prepareSlot(
  db: Client,
  slot: { slotName: string; forNode: string; purpose: 'reverse' | 'manual' | 'two-phase'; publication: string; ttlSeconds: number },
): Promise<{ slot_name: string; lsn: string; expires_at: Date }> {
  const {
    rows: [row],
  } = await db.query(`SELECT slot_name, lsn::text, expires_at FROM steep_repl.prepare_slot($1, $2, $3, $4, make_interval(secs => $5))`, [
    slot.slotName,
    slot.forNode,
    slot.purpose,
    slot.publication,
    slot.ttlSeconds,
  ]);
  if (row.lsn) return row;
  const made = await db.query('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()', [
    slot.slotName,
  ]);
  try {
    const lsn: string =
      made.rows[0]?.lsn ?? (await db.query("SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", [slot.slotName])).rows[0].lsn;
    const { rows } = await db.query('SELECT slot_name, lsn::text, expires_at FROM steep_repl.prepared_slot_created($1, $2)', [slot.slotName, lsn]);
    return rows[0];
  } catch (err) {
    // not made (no free slot, say): the row, its publication and any slot go now, not at expiry
    await db.query('UPDATE steep_repl.init_slots SET expires_at = now() WHERE slot_name = $1', [slot.slotName]).catch(() => undefined);
    await db.query('SELECT steep_repl.expire_prepared_slot($1)', [slot.slotName]).catch(() => undefined);
    throw err;
  }
}

export async function consumePreparedSlot(db: Client, slotName: string): Promise<boolean> {
  return (await db.query('SELECT steep_repl.consume_prepared_slot($1) AS consumed', [slotName])).rows[0].consumed;
}

// Tables of a publication as pg_publication_tables lists them (partition
// roots, with publish_via_partition_root), as schema.table labels.
export async function publicationTables(db: Client, publication: string): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT format('%I.%I', schemaname, tablename) AS label FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`,
    [publication],
  );
  return rows.map((r) => r.label);
}

// Before anything is created: a source still being initialized holds only
// part of its data, and one being initialized from this very target is a
// cycle (each would copy the other's half-copied tables and stream them back).
export function refuseIncompleteSource(self: SourceSelf | undefined, sourceId: string, targetId: string): void {
  if (!self || self.node_id !== sourceId) return;
  const state = self.init_state;
  if (self.init_source_node === targetId && self.in_progress) {
    throw new SteepError(
      `node ${sourceId} is itself being initialized from ${targetId} (${state}): initializing ${targetId} from ${sourceId} now would make a cycle, each node copying the other's half-copied tables`,
      undefined,
      `wait until ${sourceId} is synchronized, then start ${targetId} from ${sourceId} again (it then becomes the reverse direction of the pair, copying nothing), or cancel that init (steep-repl node cancel ${shellWord(sourceId)}); cancel this one meanwhile: steep-repl node cancel ${shellWord(targetId)}`,
    );
  }
  if (self.in_progress || state === 'failed') {
    const from = self.init_source_node ? ` from ${self.init_source_node}` : '';
    throw new SteepError(
      `source node ${sourceId} is ${state === 'failed' ? 'a failed initialization' : `itself being initialized (${state})`}${from}: its tables are not complete, so a copy of them would not be either`,
      undefined,
      state === 'failed'
        ? `resume or cancel the init of ${sourceId} first, then start ${targetId} again (or start it from a node that is synchronized); cancel this one meanwhile: steep-repl node cancel ${shellWord(targetId)}`
        : `start ${targetId} once ${sourceId} is synchronized (or from a node that is); cancel this one meanwhile: steep-repl node cancel ${shellWord(targetId)}`,
    );
  }
}

export interface Topology {
  // the subscription's origin; null where the server has no such option (15)
  origin: 'none' | 'any' | null;
  // the source receives from others and forwards them (origin = any)
  cascade: boolean;
  // the source subscribes from the target: the pair becomes bidirectional
  bidirectional: boolean;
}

const describeUpstream = (u: Upstream) => (u.from_node ? `node ${u.from_node} (subscription ${u.subscription}, origin ${u.origin})` : `subscription ${u.subscription} (not made by steep-repl)`);

// What the source receives and what the target sends decide how the target
// subscribes; a pair whose changes would echo or be lost is refused.
export function decideTopology(input: {
  sourceId: string;
  targetId: string;
  upstreams: Upstream[];
  targetDownstream: string[];
  sourceVersion: number;
  targetVersion: number;
}): Topology {
  const { sourceId, targetId, upstreams } = input;
  // origin filtering happens in the publisher's pgoutput and the option is
  // the subscriber's: both must be 16 or later
  const originCapable = input.sourceVersion >= 160000 && input.targetVersion >= 160000;
  const fromTarget = upstreams.filter((u) => u.from_node === targetId);
  const others = upstreams.filter((u) => u.from_node !== targetId);
  if (fromTarget.length) {
    if (others.length) {
      throw new SteepError(
        `node ${sourceId} receives changes from ${targetId} and also from ${others.map(describeUpstream).join(', ')}: a bidirectional pair ${sourceId} <-> ${targetId} with such a source either loses the changes ${sourceId} forwards (origin = none drops them) or sends ${targetId}'s own changes back to it (origin = any echoes them)`,
        undefined,
        `make the pair one-way (initialize ${targetId} from another node), or remove ${sourceId}'s other subscriptions first; cancel this one meanwhile: steep-repl node cancel ${shellWord(targetId)}`,
      );
    }
    const echoing = fromTarget.filter((u) => u.origin === 'any');
    if (echoing.length && originCapable) {
      throw new SteepError(
        `node ${sourceId} subscribes from ${targetId} with origin = any (${echoing.map((u) => u.subscription).join(', ')}): in a bidirectional pair every change of ${targetId} would come back to it`,
        undefined,
        `a pair streams both ways only with origin = none on both sides: re-create that subscription with origin = none (ALTER SUBSCRIPTION ... SET (origin = none)), then start again; cancel this one meanwhile: steep-repl node cancel ${shellWord(targetId)}`,
      );
    }
    if (!originCapable) {
      throw new SteepError(
        `a bidirectional pair ${sourceId} <-> ${targetId} needs PostgreSQL 16 or later on both nodes (origin = none), and ${input.sourceVersion < 160000 ? sourceId : targetId} runs ${versionText(Math.min(input.sourceVersion, input.targetVersion))}: every change would loop between them`,
        undefined,
        `upgrade both servers to 16 or later, or keep the pair one-way; cancel this one meanwhile: steep-repl node cancel ${shellWord(targetId)}`,
      );
    }
    return { origin: 'none', cascade: false, bidirectional: true };
  }
  if (others.length) {
    if (input.targetDownstream.length) {
      throw new SteepError(
        `node ${sourceId} forwards changes it receives (from ${others.map(describeUpstream).join(', ')}), so ${targetId} would subscribe with origin = any; but ${targetId} itself sends changes on (slots ${input.targetDownstream.join(', ')}), and a change could come back around to where it was made`,
        undefined,
        `initialize ${targetId} from a node that receives nothing, or from one whose data does not pass through ${targetId}; cancel this one meanwhile: steep-repl node cancel ${shellWord(targetId)}`,
      );
    }
    return { origin: input.targetVersion >= 160000 ? 'any' : null, cascade: true, bidirectional: false };
  }
  return { origin: originCapable ? 'none' : input.targetVersion >= 160000 ? 'any' : null, cascade: false, bidirectional: false };
}

function versionText(num: number): string {
  return `PostgreSQL ${Math.floor(num / 10000)}`;
}

// For a cancel: the slot the source prepared for this pair (its name is the
// pair's) and its publication. Until the init's subscription streams
// through it, it is not the init's to drop: it stays for the next start.
// Once a subscription exists it owns the slot (dropping it drops the slot),
// so the row goes too.
export async function keepPreparedSlot(source: Client, slotName: string, subscriptionExists: boolean): Promise<string[]> {
  const { rows } = await source.query("SELECT to_regclass('steep_repl.init_slots') IS NOT NULL AS installed");
  if (!rows[0].installed) return [];
  const slot = await findPreparedSlot(source, slotName);
  if (!slot) return [];
  if (subscriptionExists) {
    await consumePreparedSlot(source, slotName);
    return [];
  }
  return [slot.slot_name, ...(slot.publication ? [slot.publication] : [])];
}
