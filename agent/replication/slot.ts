// Logical slots on the source: their position, and removing them.
import { Client, ClientConfig } from 'pg';
import { connect, ConnectionTarget, nodeClientConfig } from '../../lib/connection';
import { ident } from './quoting';

// The source's WAL insert position (see steep_repl.slot_lag for why not
// pg_current_wal_lsn()): the catch-up target once every table is copied.
export async function currentLsn(source: Client): Promise<string> {
  return (await source.query('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0].lsn;
}

// Slots of this database with one of these names or matching a LIKE pattern.
export async function findSlots(
  source: Client,
  names: string[],
  likePatterns: string[] = [],
): Promise<Array<{ slot_name: string; active_pid: number | null }>> {
  const { rows } = await source.query(
    `SELECT slot_name, active_pid FROM pg_replication_slots
     WHERE database = current_database() AND (slot_name = ANY ($1::text[]) OR slot_name LIKE ANY ($2::text[]))`,
    [names, likePatterns],
  );
  return rows;
}

// The walsender still holding it is ended first (waiting up to 5 s for it).
export async function dropSlot(source: Client, slot: { slot_name: string; active_pid: number | null }): Promise<void> {
  if (slot.active_pid) await source.query('SELECT pg_terminate_backend($1, 5000)', [slot.active_pid]);
  await source.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot.slot_name]);
}

export interface ExportedSlot {
  slotName: string;
  // where a subscription from this slot starts: the first change after the snapshot
  consistentLsn: string;
  // for SET TRANSACTION SNAPSHOT in other sessions of the source
  snapshotName: string;
  // The snapshot lives only while this session stays open and idle.
  release(): Promise<void>;
  // Settles when the session ends (released, or lost: the server restarted).
  closed: Promise<void>;
}

// A logical slot created on a replication connection with an exported
// snapshot: every session that imports the snapshot reads the database as it
// was at the slot's consistent point, so a copy made there plus a
// subscription from the slot (create_slot = false) lose and repeat nothing.
// (pg_create_logical_replication_slot() inside a snapshot transaction gives
// no such guarantee.) The publication must exist before the slot: pgoutput
// decodes each change with the publications as they were when it was
// written, so rows written before CREATE PUBLICATION never stream. The
// holder ignores the server's idle timeouts, which
// would otherwise end the snapshot under a long copy.
export async function createSlotWithSnapshot(node: ConnectionTarget & { node_id?: string }, slotName: string): Promise<ExportedSlot> {
  const where = `${node.node_id ? `node ${node.node_id} at ` : ''}${node.host}:${node.port}/${node.dbname}`;
  return createSlotWithSnapshotOn(nodeClientConfig(node, 'steep-repl snapshot holder'), where, slotName);
}

// The same on a database given by its client settings (a two-phase
// snapshot's source is the agent's own database, reached as the agent reaches it).
export async function createSlotWithSnapshotOn(settings: ClientConfig, where: string, slotName: string): Promise<ExportedSlot> {
  const config = {
    ...settings,
    replication: 'database',
    options: '-c idle_session_timeout=0 -c idle_in_transaction_session_timeout=0 -c statement_timeout=0',
  };
  const holder = await connect(config, where);
  const closed = new Promise<void>((resolve) => {
    holder.once('end', resolve);
    holder.once('error', () => resolve());
  });
  try {
    const { rows } = await holder.query(`CREATE_REPLICATION_SLOT ${ident(slotName)} LOGICAL pgoutput (SNAPSHOT 'export')`);
    return {
      slotName: rows[0].slot_name,
      consistentLsn: rows[0].consistent_point,
      snapshotName: rows[0].snapshot_name,
      release: () => holder.end().catch(() => undefined),
      closed,
    };
  } catch (err) {
    await holder.end().catch(() => undefined);
    throw err;
  }
}
