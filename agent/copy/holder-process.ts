// The process that holds an exported snapshot (started by holder.ts, not
// by hand): a direct init's, or a two-phase snapshot's while its generate
// writes the files. It creates the slot with SNAPSHOT 'export' on a
// replication connection to the source, prints one JSON line
// ({slot_name, consistent_lsn, snapshot_name} or {error, code}) and keeps
// that connection open and idle: the snapshot lives as long as it does.
// Being a process of its own, it outlives an agent that is killed
// (pgcopydb does the same), so the next agent resumes on the same snapshot.
// It lets go once the snapshot is no longer needed, looked at in the
// agent's database every second: for an init, the init left copying, was
// cancelled, recorded another snapshot or none (the copy on it is over);
// for a snapshot, its row is no longer generating or recorded another
// snapshot or none (the files are written); for both, when no agent
// reported for hold_seconds, when the source ends the connection, or on SIGTERM.
import { Client } from 'pg';
import { clientConfig, ConnectionTarget, describeTarget } from '../../lib/connection';
import { createSlotWithSnapshot, createSlotWithSnapshotOn } from '../../lib/slot-with-snapshot';

export interface HolderConfig {
  // a direct init's holder: the init of this node, on this source
  nodeId?: string;
  source?: ConnectionTarget & { node_id?: string };
  // a two-phase snapshot's holder: the snapshot generated on the agent's
  // own database, which is the source
  snapshotId?: string;
  slotName: string;
  // the agent's database, where the init's or the snapshot's state is read
  target?: string;
  holdSeconds: number;
}

interface Watched {
  // the snapshot the row records (null: not yet, or no longer)
  snapshot_name: string | null;
  // still at the step that reads on the snapshot
  needed: boolean;
  idle_seconds: number;
}

// What the init's or the snapshot's row says now; undefined: no such row.
async function readWatched(db: Client, config: HolderConfig): Promise<Watched | undefined> {
  if (config.snapshotId) {
    const { rows } = await db.query(
      `SELECT snapshot_name, state = 'generating' AS needed, extract(epoch FROM clock_timestamp() - updated_at)::float8 AS idle_seconds
       FROM steep_repl.snapshots WHERE snapshot_id = $1`,
      [config.snapshotId],
    );
    return rows[0];
  }
  const { rows } = await db.query(
    `SELECT s.snapshot_name, n.init_state IN ('preparing', 'copying') AND p.cancel_requested_at IS NULL AS needed,
            extract(epoch FROM clock_timestamp() - p.updated_at)::float8 AS idle_seconds
     FROM steep_repl.nodes n
     LEFT JOIN steep_repl.init_progress p USING (node_id)
     LEFT JOIN steep_repl.init_method_state s USING (node_id)
     WHERE n.node_id = $1`,
    [config.nodeId],
  );
  return rows[0];
}

const pollMs = 1000;

async function main(): Promise<void> {
  const config: HolderConfig = JSON.parse(process.env.STEEP_REPL_HOLDER ?? '{}');
  delete process.env.STEEP_REPL_HOLDER;
  let slot;
  try {
    slot = config.snapshotId
      ? await createSlotWithSnapshotOn(clientConfig(config.target, 'steep-repl snapshot holder'), describeTarget(config.target), config.slotName)
      : await createSlotWithSnapshot(config.source!, config.slotName);
  } catch (err) {
    const e = err as Error & { code?: string };
    process.stdout.write(`${JSON.stringify({ error: e.message, code: e.code ?? null })}\n`);
    process.exit(1);
  }
  const stop = async (code: number) => {
    await slot.release();
    process.exit(code);
  };
  process.on('SIGTERM', () => void stop(0));
  process.on('SIGINT', () => void stop(0));
  void slot.closed.then(() => process.exit(0));
  process.stdout.write(`${JSON.stringify({ slot_name: slot.slotName, consistent_lsn: slot.consistentLsn, snapshot_name: slot.snapshotName })}\n`);

  const startedAt = Date.now();
  let target: Client | undefined;
  let unreachableSince: number | undefined;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, pollMs));
    try {
      if (!target) {
        target = new Client(clientConfig(config.target, 'steep-repl snapshot holder'));
        target.on('error', () => undefined);
        await target.connect();
      }
      const watched = await readWatched(target, config);
      unreachableSince = undefined;
      // the agent records the snapshot right after this process printed it
      const recorded = watched?.snapshot_name === slot.snapshotName || (watched?.snapshot_name == null && Date.now() - startedAt < 60_000);
      const needed = watched && watched.needed && recorded && watched.idle_seconds < config.holdSeconds;
      if (!needed) return stop(0);
    } catch {
      await target?.end().catch(() => undefined);
      target = undefined;
      unreachableSince ??= Date.now();
      if (Date.now() - unreachableSince > 30_000) return stop(0);
    }
  }
}

void main();
