// The merge points: on each node a slot made with an exported snapshot
// (lib/slot-with-snapshot.ts), after the pair's publication. A reader
// session per node imports that snapshot, so the comparison and the rows
// the exchange copies are what each node held at its slot's consistent
// point, and the subscription later made from the slot carries every
// change written after it: nothing is lost or repeated. The snapshot
// holders are released once the readers hold the snapshots.
import { Client } from 'pg';
import { clientConfig, describeTarget } from '../../lib/connection';
import { TableName } from '../../lib/sql/queryable';
import { createSlotWithSnapshot, createSlotWithSnapshotOn, ExportedSlot } from '../../lib/slot-with-snapshot';
import { ensurePublication } from '../replication/publication';
import { literal } from '../replication/quoting';
import { PairNames } from './names';
import { closeSession, NodeEndpoint, openSession, PeerSession } from './sessions';

export interface Readers {
  a: Client;
  b: Client;
}

export interface MergePoints extends Readers {
  // the slots' consistent points (merge_runs.lsn_a / lsn_b)
  lsnA: string;
  lsnB: string;
}

async function slotOn(endpoint: NodeEndpoint, slot: string): Promise<ExportedSlot> {
  return endpoint.own
    ? createSlotWithSnapshotOn(clientConfig(endpoint.connectionString, 'steep-repl merge point'), describeTarget(endpoint.connectionString), slot)
    : createSlotWithSnapshot(endpoint.node, slot, 'steep-repl merge point');
}

async function reader(endpoint: NodeEndpoint, snapshot: string | null, signal: AbortSignal): Promise<Client> {
  const client = await openSession(endpoint, 'steep-repl merge reader', signal);
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    if (snapshot) await client.query(`SET TRANSACTION SNAPSHOT ${literal(snapshot)}`);
    // the snapshot is taken by the first statement: now, for a reader without an exported one
    await client.query('SELECT 1');
    return client;
  } catch (err) {
    await closeSession(client);
    throw err;
  }
}

export async function makeMergePoints(input: {
  a: Client;
  b: PeerSession;
  endpoints: { a: NodeEndpoint; b: NodeEndpoint };
  names: PairNames;
  tables: TableName[];
  signal: AbortSignal;
}): Promise<MergePoints> {
  const { a, b, endpoints, names, tables, signal } = input;
  // publications before the slots: pgoutput decodes a change with the
  // publications as they were when it was written
  await ensurePublication(a, names.ab, tables);
  await b.run((client) => ensurePublication(client, names.ba, tables));
  const held: ExportedSlot[] = [];
  const readers: Client[] = [];
  try {
    held.push(await slotOn(endpoints.a, names.ab));
    held.push(await slotOn(endpoints.b, names.ba));
    readers.push(await reader(endpoints.a, held[0].snapshotName, signal));
    readers.push(await reader(endpoints.b, held[1].snapshotName, signal));
    return { a: readers[0], b: readers[1], lsnA: held[0].consistentLsn, lsnB: held[1].consistentLsn };
  } catch (err) {
    await Promise.all(readers.map(closeSession));
    throw err;
  } finally {
    await Promise.all(held.map((h) => h.release()));
  }
}

// analyze, dry-run, record: no slots, each node read in one transaction of
// its own (each consistent in itself; the nodes may be written meanwhile).
export async function openReaders(endpoints: { a: NodeEndpoint; b: NodeEndpoint }, signal: AbortSignal): Promise<Readers> {
  const a = await reader(endpoints.a, null, signal);
  try {
    return { a, b: await reader(endpoints.b, null, signal) };
  } catch (err) {
    await closeSession(a);
    throw err;
  }
}
