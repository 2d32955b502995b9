// The process that holds a direct init's exported snapshot (started by
// holder.ts, not by hand). It creates the pair's slot with SNAPSHOT
// 'export' on a replication connection to the source, prints one JSON line
// ({slot_name, consistent_lsn, snapshot_name} or {error, code}) and keeps
// that connection open and idle: the snapshot lives as long as it does.
// Being a process of its own, it outlives an agent that is killed
// (pgcopydb does the same), so the next agent resumes on the same snapshot.
// It lets go once the init no longer needs it, looked at on the target
// every second: the init left copying, was cancelled, recorded another
// snapshot or none (the copy on it is over), or no agent reported for
// hold_seconds; also when the source ends the connection, or on SIGTERM.
import { Client } from 'pg';
import { clientConfig, ConnectionTarget } from '../../lib/connection';
import { createSlotWithSnapshot } from '../replication/slot';

export interface HolderConfig {
  nodeId: string;
  source: ConnectionTarget & { node_id?: string };
  slotName: string;
  // the target database (the agent's), where the init's state is read
  target?: string;
  holdSeconds: number;
}

const pollMs = 1000;

async function main(): Promise<void> {
  const config: HolderConfig = JSON.parse(process.env.STEEP_REPL_HOLDER ?? '{}');
  delete process.env.STEEP_REPL_HOLDER;
  let slot;
  try {
    slot = await createSlotWithSnapshot(config.source, config.slotName);
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
      const { rows } = await target.query(
        `SELECT n.init_state, s.snapshot_name, p.cancel_requested_at IS NOT NULL AS cancelled,
                extract(epoch FROM clock_timestamp() - p.updated_at)::float8 AS idle_seconds
         FROM steep_repl.nodes n
         LEFT JOIN steep_repl.init_progress p USING (node_id)
         LEFT JOIN steep_repl.init_method_state s USING (node_id)
         WHERE n.node_id = $1`,
        [config.nodeId],
      );
      unreachableSince = undefined;
      const init = rows[0];
      // the agent records the snapshot right after this process printed it
      const recorded = init?.snapshot_name === slot.snapshotName || (init?.snapshot_name == null && Date.now() - startedAt < 60_000);
      const needed =
        init && ['preparing', 'copying'].includes(init.init_state) && !init.cancelled && recorded && init.idle_seconds < config.holdSeconds;
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
