// What node prepare, status and list read and say about a manual init's
// prepare: the source's facts the printed commands need, how a held
// snapshot ended, and the prepare as the source sees it now.
import { Client } from 'pg';
import { connectToNode } from '../lib/connection';
import { describeError, ExitCode, ExitCodeValue, SteepError } from '../lib/errors';
import { bytes, shellWord } from '../lib/format';
import { getInitStatus, MethodState } from '../lib/sql/getInitStatus';
import { getNode, RegisteredNode } from '../lib/sql/getNode';
import { listPreparedSlots, PreparedSlot } from '../lib/sql/listPreparedSlots';
import { NodeOverview } from '../lib/sql/listNodes';
import { Queryable } from '../lib/sql/queryable';
import { completeCommand, nodeUrl } from './backup-commands';
import { HoldEnd } from './snapshot-hold';

// node prepare's replication connection that holds the exported snapshot
// (lib/manual/handover.ts knows it by this name).
export const holderApplication = 'steep-repl prepare';

export interface PrepareFacts {
  // steep-repl's own schemas on the source (is_user_schema false): the dump leaves them out
  ownSchemas: string[];
  // steep_repl is an extension there, not a plain schema
  extension: boolean;
  serverVersion: string;
  serverMajor: number;
  enabledSubscriptions: number;
  // tables in the target's user schemas (pg_restore stops at the first that exists)
  targetTables: number;
}

export async function prepareFacts(source: Queryable, target?: Queryable): Promise<PrepareFacts> {
  const { rows } = await source.query(
    `SELECT ARRAY(SELECT nspname::text FROM pg_catalog.pg_namespace
                  WHERE NOT steep_repl.is_user_schema(nspname) AND nspname !~ '^pg_' AND nspname <> 'information_schema'
                  ORDER BY nspname) AS own_schemas,
            EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'steep_repl') AS extension,
            current_setting('server_version') AS server_version,
            current_setting('server_version_num')::int / 10000 AS server_major,
            (SELECT count(*)::int FROM pg_catalog.pg_subscription WHERE subenabled) AS enabled_subscriptions`,
  );
  const targetTables = target
    ? (
        await target.query(
          `SELECT count(*)::int AS n FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND steep_repl.is_user_schema(n.nspname)`,
        )
      ).rows[0].n
    : 0;
  const r = rows[0];
  return {
    ownSchemas: r.own_schemas,
    extension: r.extension,
    serverVersion: r.server_version,
    serverMajor: r.server_major,
    enabledSubscriptions: r.enabled_subscriptions,
    targetTables,
  };
}

// Ctrl+C or SIGTERM while prepare makes the slot: what runs on the source
// is cancelled (making a slot waits for every transaction running on the
// server, which may take long), and the caller undoes the prepare.
export class SetupInterrupts {
  signal?: NodeJS.Signals;
  private readonly pids = new Set<number>();
  private cancelling?: Promise<void>;
  private readonly onSignal = (signal: NodeJS.Signals) => {
    if (this.signal) return;
    this.signal = signal;
    process.stderr.write(`${signal}: stopping node prepare; what it made is undone\n`);
    this.cancelling = this.cancelRunning().catch(() => undefined);
  };

  constructor(private readonly source: RegisteredNode) {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  // a backend of ours on the source that a signal cancels
  watch(client: Client | number): void {
    this.pids.add(typeof client === 'number' ? client : (client as unknown as { processID: number }).processID);
  }

  // after every step: stop here once interrupted
  check(): void {
    if (this.signal) throw this.interruptedError();
  }

  interruptedError(): SteepError {
    return new SteepError(`node prepare interrupted (${this.signal}): nothing stays prepared`, ExitCode.cancelled);
  }

  async stop(): Promise<void> {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    await this.cancelling;
  }

  private async cancelRunning(): Promise<void> {
    const db = await connectToNode(this.source, 'steep-repl node prepare');
    try {
      await db.query('SELECT pg_catalog.pg_cancel_backend(pid) FROM unnest($1::int[]) pid', [[...this.pids]]);
    } finally {
      await db.end().catch(() => undefined);
    }
  }
}

export interface HoldContext {
  target: string;
  targetNode: RegisteredNode;
  sourceNode: RegisteredNode;
  slotName: string;
  snapshotName: string;
  expiresAt: Date;
}

// The last word of node prepare --for pg_dump and its exit code. A
// connection that ended without us was ended by node complete (the target
// asked for the subscription), by a cancel or the expiry (the source's
// prepare is gone), or was lost.
export async function describeHoldEnd(end: HoldEnd, c: HoldContext): Promise<{ message: string; exitCode: ExitCodeValue }> {
  const stays = `the slot ${c.slotName} stays for node complete until ${c.expiresAt.toISOString()}: ${completeCommand(c.target, c.targetNode)}`;
  if (end.kind !== 'ended') {
    const why = end.kind === 'enter' ? 'Enter' : end.kind === 'signal' ? end.signal : c.expiresAt.getTime() <= Date.now() + 1000 ? 'the slot expires' : '--hold elapsed';
    return {
      message: `released snapshot ${c.snapshotName} (${why}): a pg_dump that started before now is unaffected, one started now fails; ${stays}`,
      exitCode: ExitCode.ok,
    };
  }
  const reason = end.error ? describeError(end.error).replace(/\n/g, ' ') : 'the connection closed';
  // a cancel or an expiry ends the holder before its own transaction commits: give that a moment to show
  let seen: Awaited<ReturnType<typeof whoEnded>> | { kind: 'unknown'; why: string } = { kind: 'lost' };
  for (let attempt = 0; attempt < 6 && seen.kind === 'lost'; attempt++) {
    if (attempt) await new Promise((resolve) => setTimeout(resolve, 500));
    seen = await whoEnded(c).catch((err) => ({ kind: 'unknown' as const, why: describeError(err).replace(/\n/g, ' ') }));
  }
  if (seen.kind === 'complete') return { message: `snapshot ${c.snapshotName} released by node complete: ${c.target} subscribes from the slot now`, exitCode: ExitCode.ok };
  if (seen.kind === 'cancelled') {
    return { message: `snapshot ${c.snapshotName} released: the prepare of ${c.target} was cancelled or expired (${seen.why}); the slot is gone`, exitCode: ExitCode.cancelled };
  }
  return {
    message:
      `error: the snapshot holder was dropped: ${reason}; a pg_dump that already started is unaffected, one started now fails` +
      `${seen.kind === 'unknown' ? ` (what ended it could not be read: ${seen.why})` : ''}\n` +
      `hint: if the dump has not started, cancel (steep-repl node cancel ${shellWord(c.target)} --db ${shellWord(nodeUrl(c.targetNode))}) and prepare again; else ${stays}`,
    exitCode: ExitCode.error,
  };
}

async function whoEnded(c: HoldContext): Promise<{ kind: 'complete' | 'cancelled' | 'lost'; why?: string }> {
  const target = await connectToNode(c.targetNode, 'steep-repl node prepare');
  try {
    const status = await getInitStatus(target, c.target);
    if (status.method_state?.complete_requested_at || ['catching_up', 'synchronized'].includes(status.state)) return { kind: 'complete' };
    if (!status.in_progress || status.state === 'uninitialized') return { kind: 'cancelled', why: `${c.target} is ${status.state}` };
    if (status.progress?.cancel_requested_at) return { kind: 'cancelled', why: `node cancel ${c.target}` };
  } finally {
    await target.end().catch(() => undefined);
  }
  const source = await connectToNode(c.sourceNode, 'steep-repl node prepare');
  try {
    const [slot] = await listPreparedSlots(source, c.slotName);
    if (!slot) return { kind: 'cancelled', why: `no prepared slot ${c.slotName} on ${c.sourceNode.node_id}` };
  } finally {
    await source.end().catch(() => undefined);
  }
  return { kind: 'lost' };
}

// A manual init's prepare as node status and list show it: from the
// target's method state, and the slot as its source sees it now.
export interface ManualPrepareView {
  backup: string | null;
  slot_name: string | null;
  lsn: string | null;
  snapshot_name: string | null;
  expires_at: string | null;
  complete_requested_at: string | null;
  source_node_id: string | null;
  // read from the source's prepared_slots(); unknown: why it could not be
  source: (PreparedSlot & { snapshot_held: boolean }) | { unknown: string } | null;
}

// Only for a manual init in preparing on this database's own node.
export function waitsForBackup(n: Pick<NodeOverview, 'method' | 'init_state' | 'is_local'>): boolean {
  return n.is_local && n.method === 'manual' && n.init_state === 'preparing';
}

export async function readManualPrepare(client: Client, nodeId: string): Promise<ManualPrepareView> {
  const status = await getInitStatus(client, nodeId);
  const state: Partial<MethodState> = status.method_state ?? {};
  const view: ManualPrepareView = {
    backup: state.backup ?? null,
    slot_name: state.slot_name ?? null,
    lsn: state.consistent_lsn ?? null,
    snapshot_name: state.snapshot_name ?? null,
    expires_at: state.expires_at ?? null,
    complete_requested_at: state.complete_requested_at ?? null,
    source_node_id: status.source_node_id,
    source: null,
  };
  if (!status.source_node_id || !view.slot_name) return view;
  try {
    const source = await connectToNode(await getNode(client, status.source_node_id), 'steep-repl node status');
    try {
      const [slot] = await listPreparedSlots(source, view.slot_name);
      view.source = slot
        ? { ...slot, snapshot_held: slot.holder_pid !== null }
        : { unknown: `${status.source_node_id} holds no prepared slot ${view.slot_name} (cancelled or expired)` };
    } finally {
      await source.end().catch(() => undefined);
    }
  } catch (err) {
    view.source = { unknown: describeError(err).replace(/\n/g, ' ') };
  }
  return view;
}

// "pg_dump, waiting for the restore": what the init waits for.
export function manualWaitText(backup: string | null): string {
  if (backup === 'pg_dump') return 'manual (pg_dump): waiting for the dump and restore, then node complete';
  if (backup === 'pg_basebackup') return 'manual (pg_basebackup): waiting for node complete on the restored copy';
  return 'manual: waiting for node complete';
}

// The slot line: where it is, the snapshot, what it retains, its expiry.
export function manualSlotText(v: ManualPrepareView): string {
  const where = `${v.slot_name ?? '-'} on ${v.source_node_id ?? '-'} at LSN ${v.lsn ?? '-'}`;
  if (!v.source) return `${where}, expires ${v.expires_at ? new Date(v.expires_at).toISOString() : '-'}`;
  if ('unknown' in v.source) return `${where}: WAL retained unknown: ${v.source.unknown}`;
  return `${where} ${preparedSlotText(v.source)}`;
}

// "(manual pg_dump, snapshot 00000003-0000001B-1 held (pid 123)): retains 12MB of WAL, expires ..."
export function preparedSlotText(s: PreparedSlot): string {
  const state = !s.slot_exists
    ? 'slot missing'
    : s.wal_status === 'lost'
      ? 'invalidated'
      : s.active
        ? 'in use'
        : s.holder_pid !== null
          ? `snapshot ${s.snapshot_name} held (pid ${s.holder_pid})`
          : 'waiting';
  const retains = s.slot_exists ? `retains ${bytes(s.retained_bytes)} of WAL` : 'retains no WAL';
  return `(${s.purpose}${s.backup ? ` ${s.backup}` : ''}, ${state}): ${retains}, expires ${new Date(s.expires_at).toISOString()}`;
}

// What to do about a prepared slot that keeps much WAL.
export function preparedSlotAdvice(s: PreparedSlot, local: string): string {
  if (s.purpose === 'manual') {
    return `complete the manual init of ${s.for_node} (steep-repl node complete ${shellWord(s.for_node)}) soon, or cancel it (steep-repl node cancel ${shellWord(s.for_node)})`;
  }
  return `start the init of ${s.for_node} from ${local} soon, or drop it: SELECT pg_drop_replication_slot('${s.slot_name}'); DELETE FROM steep_repl.init_slots WHERE slot_name = '${s.slot_name}'`;
}
