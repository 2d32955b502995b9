// A logical slot created on a replication connection with an exported
// snapshot: the agent's snapshot holders and node prepare --for pg_dump
// make theirs with it.
import { ClientConfig, escapeIdentifier } from 'pg';
import { connect, ConnectionTarget, nodeClientConfig } from './connection';

export interface ExportedSlot {
  slotName: string;
  // where a subscription from this slot starts: the first change after the snapshot
  consistentLsn: string;
  // for SET TRANSACTION SNAPSHOT in other sessions of the source (pg_dump --snapshot)
  snapshotName: string;
  // the backend pid of the replication connection holding the snapshot
  holderPid: number;
  // The snapshot lives only while this session stays open and idle.
  release(): Promise<void>;
  // Settles when the session ends (released, or lost: the server restarted,
  // the walsender was terminated), with the error that ended it if any.
  closed: Promise<Error | undefined>;
}

// Every session that imports the snapshot reads the database as it was at
// the slot's consistent point, so a copy made there plus a subscription from
// the slot (create_slot = false) lose and repeat nothing.
// (pg_create_logical_replication_slot() inside a snapshot transaction gives
// no such guarantee.) The publication must exist before the slot: pgoutput
// decodes each change with the publications as they were when it was
// written, so rows written before CREATE PUBLICATION never stream. The
// holder ignores the server's idle timeouts, which would otherwise end the
// snapshot under a long copy.
export async function createSlotWithSnapshot(
  node: ConnectionTarget & { node_id?: string },
  slotName: string,
  applicationName = 'steep-repl snapshot holder',
  options: SlotOptions = {},
): Promise<ExportedSlot> {
  const where = `${node.node_id ? `node ${node.node_id} at ` : ''}${node.host}:${node.port}/${node.dbname}`;
  return createSlotWithSnapshotOn(nodeClientConfig(node, applicationName), where, slotName, options);
}

export interface SlotOptions {
  // the holder's backend pid once connected, before the slot is made (which
  // waits for the transactions running on the server): one to cancel it by
  onConnected?(pid: number): void;
}

// The same on a database given by its client settings (a two-phase
// snapshot's source is the agent's own database, reached as the agent reaches it).
export async function createSlotWithSnapshotOn(settings: ClientConfig, where: string, slotName: string, options: SlotOptions = {}): Promise<ExportedSlot> {
  const config = {
    ...settings,
    replication: 'database',
    options: '-c idle_session_timeout=0 -c idle_in_transaction_session_timeout=0 -c statement_timeout=0',
  };
  const holder = await connect(config, where);
  let failure: Error | undefined;
  const closed = new Promise<Error | undefined>((resolve) => {
    holder.once('end', () => resolve(failure));
    holder.once('error', (err) => {
      failure = err;
      resolve(err);
    });
  });
  const holderPid = (holder as unknown as { processID: number }).processID;
  options.onConnected?.(holderPid);
  try {
    const { rows } = await holder.query(`CREATE_REPLICATION_SLOT ${escapeIdentifier(slotName)} LOGICAL pgoutput (SNAPSHOT 'export')`);
    return {
      slotName: rows[0].slot_name,
      consistentLsn: rows[0].consistent_point,
      snapshotName: rows[0].snapshot_name,
      holderPid,
      release: () => holder.end().catch(() => undefined),
      closed,
    };
  } catch (err) {
    await holder.end().catch(() => undefined);
    throw err;
  }
}
