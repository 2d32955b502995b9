// The reverse direction of a pair (issue 9): a node that becomes
// synchronized from its source prepares, on itself, the slot the source's
// later init from it subscribes through, so that init copies nothing and
// loses nothing. See docs/init.md, "Prepared slots".
import { Client } from 'pg';
import { SteepError } from '../../lib/errors';
import { shellWord } from '../../lib/format';
import { getReplicationName } from '../../lib/sql/getReplicationName';
import { ReplicatedTable } from '../../lib/sql/listReplicatedTables';
import { ensurePublication } from '../replication/publication';
import { getSlotLag } from '../../lib/sql/getSlotLag';
import { consumePreparedSlot, findPreparedSlot, prepareSlot, publicationTables } from '../replication/topology';
import type { InitRun } from './runner';

// Before this node is synchronized, the direction back to the source is
// made ready on it: the publication (first: pgoutput decodes with the
// publications as they were) and a slot, recorded in init_slots with its
// expiry. From the slot on, every row this node's clients write is kept
// for the source's later init from this node, which subscribes through it
// (create_slot = false). Not for the reverse of a pair (that direction
// streams already) nor a cascade or a server without origin = none (a
// bidirectional pair would be refused). Failing to make it does not fail
// this init: the later reverse init then says what to do.
export async function prepareReverseSlot(run: InitRun): Promise<string | undefined> {
  const sourceId = run.sourceNode.node_id;
  if (run.state.reverse_of_pair || run.state.origin !== 'none') {
    const reason = run.state.reverse_of_pair
      ? 'this init is the reverse of a pair: both directions stream'
      : `subscribed with origin = ${run.state.origin ?? 'any (server default)'}: a bidirectional pair with ${sourceId} would be refused`;
    run.log('info', 'init.reverse_not_prepared', { reason });
    return undefined;
  }
  // an init recorded before the option existed keeps the default, a day
  const ttlSeconds = Number(run.options.reverse_slot_ttl ?? 86400);
  if (ttlSeconds === 0) {
    run.log('info', 'init.reverse_not_prepared', { reason: 'reverse_slot_ttl is 0: a later init of the source from this node will need --force' });
    return undefined;
  }
  const name = await getReplicationName(run.target, run.nodeId, sourceId);
  try {
    const { tables } = await run.refresh();
    await ensurePublication(run.target, name, tables);
    const slot = await prepareSlot(run.target, {
      slotName: name,
      forNode: sourceId,
      purpose: 'reverse',
      publication: name,
      ttlSeconds,
    });
    run.log('info', 'init.reverse_prepared', { slot_name: name, for_node: sourceId, lsn: slot.lsn, expires_at: slot.expires_at });
    return name;
  } catch (err) {
    run.log('warn', 'init.reverse_not_prepared', {
      error: (err as Error).message,
      hint: `a later init of ${sourceId} from ${run.nodeId} will need --force (a full copy)`,
    });
    return undefined;
  }
}

// The reverse of a pair starts from the slot the source prepared when it
// became synchronized from this node: every row written on the source
// since is in it. Without a usable one the rows written there would be
// lost by a copy_data = false start: refused, or with --force a full copy
// (a stale prepared slot is dropped first, its name is the pair's).
export async function preparedSlotToUse(run: InitRun, source: Client, tables: ReplicatedTable[]): Promise<string | undefined> {
  const sourceId = run.sourceNode.node_id;
  const name = run.name;
  const slot = await findPreparedSlot(source, name);
  let problem: string | undefined;
  if (!slot) {
    problem = `node ${sourceId} holds no prepared slot for ${run.nodeId} (${name}): it was never made (a pair synchronized before steep-repl prepared one, or it could not be created then), or it expired or was dropped`;
  } else if (slot.for_node !== run.nodeId) {
    problem = `the slot ${name} on ${sourceId} was prepared for node ${slot.for_node}, not ${run.nodeId}`;
  } else if (!slot.lsn) {
    problem = `the prepared slot ${name} on ${sourceId} was never finished (the agent making it stopped before the slot was made)`;
  } else if (!slot.slot_exists) {
    problem = `the prepared slot ${name} on ${sourceId} no longer exists (dropped outside steep-repl)`;
  } else if (slot.wal_status === 'lost') {
    problem = `the prepared slot ${name} on ${sourceId} was invalidated: the server removed WAL it still needed (max_slot_wal_keep_size)`;
  } else if (slot.active) {
    problem = `the prepared slot ${name} on ${sourceId} is in use by another subscriber`;
  } else {
    const published = await publicationTables(source, slot.publication ?? name);
    const planned = tables.map((t) => t.label).sort();
    if (published.join('\n') !== planned.join('\n')) {
      problem = `the prepared publication ${slot.publication ?? name} on ${sourceId} covers ${published.join(', ') || 'no tables'}, but ${sourceId} now replicates ${planned.join(', ') || 'no tables'}`;
    }
  }
  if (!problem) {
    run.log('info', 'init.prepared_slot_found', { slot_name: name, lsn: slot!.lsn, retained_bytes: slot!.retained_bytes, expires_at: slot!.expires_at });
    return name;
  }
  if (!run.options.force) {
    throw new SteepError(
      `${problem}. Without it, the rows written on ${sourceId} since it became synchronized cannot reach ${run.nodeId} without copying every table again`,
      undefined,
      `start again with --force (options {"force": true}) to copy every table from ${sourceId}: ${run.nodeId}'s rows in them are emptied on ${run.nodeId} only, without replicating; cancel this one first: steep-repl node cancel ${shellWord(run.nodeId)}`,
    );
  }
  run.log('warn', 'init.reverse_full_copy', { reason: problem });
  if (slot) {
    await source.query('UPDATE steep_repl.init_slots SET expires_at = now() WHERE slot_name = $1', [name]);
    await source.query('SELECT steep_repl.expire_prepared_slot($1)', [name]);
  }
  return undefined;
}

// The subscription owns the prepared slot now: its init_slots row and
// expiry go (a cancel from here on drops the slot with the subscription).
// The slot must still be there: an expiry that won the race leaves a
// subscription with nothing to stream from.
export async function preparedSlotConsumed(run: InitRun, slotName: string, hint?: string): Promise<void> {
  await run.withSource((s) => consumePreparedSlot(s, slotName));
  const lag = await run.withSource((s) => getSlotLag(s, slotName));
  if (!lag.slot_exists) {
    throw new SteepError(
      `the prepared slot ${slotName} on source node ${run.sourceNode.node_id} was dropped (expired?) just as the subscription was made`,
      undefined,
      hint ?? `cancel this init (steep-repl node cancel ${shellWord(run.nodeId)}) and start it again with --force for a full copy`,
    );
  }
  run.log('info', 'init.prepared_slot_used', { slot_name: slotName, source_node: run.sourceNode.node_id });
}
