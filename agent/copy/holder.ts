// Starting the snapshot holder (holder-process.ts) and asking whether an
// exported snapshot is still alive. The holder is a process of its own so a
// killed agent does not take the snapshot with it. A stopping agent ends the
// holders of its inits (a resume then continues without the snapshot); a
// snapshot generate's holder outlives it (outliveAgent: without its snapshot
// a generate cannot resume at all) and lets go by itself once no agent
// reported for holdSeconds.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { Client, escapeLiteral } from 'pg';
import { SteepError } from '../../lib/errors';
import type { HolderConfig } from './holder-process';

export interface HeldSnapshot {
  slotName: string;
  consistentLsn: string;
  snapshotName: string;
  pid: number;
  release(): void;
}

const started = new Set<number>();
process.on('exit', () => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
});

// How long a holder keeps a snapshot for an agent that stopped reporting.
export const holdSeconds = Number(process.env.STEEP_REPL_SNAPSHOT_HOLD_SECONDS ?? 600);

export async function startHolder(config: HolderConfig, options: { outliveAgent?: boolean } = {}): Promise<HeldSnapshot> {
  const child = spawn(process.execPath, [path.join(__dirname, 'holder-process.js')], {
    detached: true,
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...process.env, STEEP_REPL_HOLDER: JSON.stringify(config) },
  });
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string | undefined>((resolve) => {
    lines.once('line', resolve);
    child.once('exit', () => resolve(undefined));
  });
  lines.close();
  child.stdout!.destroy();
  child.unref();
  const answer = first ? JSON.parse(first) : { error: 'the snapshot holder exited before it answered' };
  if (answer.error) {
    const err = new SteepError(`creating the slot ${config.slotName} with an exported snapshot failed: ${answer.error}`);
    (err as SteepError & { code?: string }).code = answer.code ?? undefined;
    throw err;
  }
  const pid = child.pid!;
  if (!options.outliveAgent) {
    started.add(pid);
    child.once('exit', () => started.delete(pid));
  }
  return {
    slotName: answer.slot_name,
    consistentLsn: answer.consistent_lsn,
    snapshotName: answer.snapshot_name,
    pid,
    release: () => {
      started.delete(pid);
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    },
  };
}

// "snapshot ... does not exist" (its holder is gone), "invalid snapshot identifier"
const snapshotGone = ['42704', '22023'];

export function isSnapshotGone(err: unknown): boolean {
  return snapshotGone.includes((err as { code?: string }).code ?? '');
}

// Connection options of a session that reads on an exported snapshot: no
// timeout may end it while it waits or copies.
export const readerOptions = '-c statement_timeout=0 -c idle_in_transaction_session_timeout=0 -c idle_session_timeout=0';

// Opens the transaction every reader of the snapshot works in.
export async function importSnapshot(source: Client, snapshotName: string): Promise<void> {
  await source.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  await source.query(`SET TRANSACTION SNAPSHOT ${escapeLiteral(snapshotName)}`);
}

// Whether sessions can still import it (its holder still runs and idles).
export async function snapshotAlive(source: Client, snapshotName: string): Promise<boolean> {
  try {
    await importSnapshot(source, snapshotName);
    return true;
  } catch (err) {
    if (isSnapshotGone(err)) return false;
    throw err;
  } finally {
    await source.query('ROLLBACK').catch(() => undefined);
  }
}
