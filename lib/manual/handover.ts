// The handover of a manual init (issue 12), checked before anything is
// subscribed: by `node complete` before it changes anything (the CLI's
// pre-check) and by the agent's init_manual before it subscribes. Both run
// this one check, so they refuse alike.
//
// The handover point H is the slot's consistent LSN X, or --source-lsn L.
// Logical decoding sends a transaction whose COMMIT record starts at or
// after where the subscription starts, so the copy must hold exactly the
// commits whose record starts before H:
// - pg_dump: taken on the slot's exported snapshot, which sees exactly that;
// - pg_basebackup: recovery stopped before the first record at or after H
//   and promoted. The copy's newest timeline history line then says
//   "before LSN Y" with Y >= H (the first record not replayed starts at or
//   after H: none before H was left out) and its switchpoint, the end of the
//   last record replayed, is <= H (none from H on was replayed). Both are
//   needed: a target set later than H also stops "before" some Y >= H.
// And the slot has confirmed nothing past H (what lies between would be gone).
// Every LSN is compared as pg_lsn in SQL, never as text. A problem names the
// numbers; the hint says what to do. Nothing here changes anything.
import { shellWord as word } from '../format';
import { Queryable } from '../sql/queryable';
import type { RecoveryEnd } from '../sql/recoveryEnd';

export type { RecoveryEnd };

export type Backup = 'pg_dump' | 'pg_basebackup';

export interface HandoverInput {
  targetNodeId: string;
  slotName: string;
  backup: Backup;
  // --source-lsn L (text as the user gave it); absent: H is the slot's LSN
  sourceLsn?: string | null;
  // pg_basebackup: the copy's, as complete_init recorded it; absent: read from the target
  recoveryEnd?: RecoveryEnd | null;
  // for the messages; absent: the source's local node id
  sourceNodeId?: string;
}

// What the source holds for the handover, as read.
export interface ManualSlot {
  slot_name: string;
  for_node: string | null;
  purpose: string | null;
  publication: string | null;
  backup: string | null;
  // the slot's consistent LSN X (recorded by record_manual_slot)
  lsn: string | null;
  snapshot_name: string | null;
  // the source's timeline when the slot was made
  timeline: number | null;
  expires_at: string | null;
  slot_exists: boolean;
  confirmed_flush_lsn: string | null;
  wal_status: string | null;
  retained_bytes: number | null;
  active_pid: number | null;
  active_application: string | null;
  // pg_dump: node prepare's replication connection that made the slot and
  // still holds its exported snapshot (found by the snapshot's name; the
  // slot itself is not active while it does), which the agent ends
  holder_pid: number | null;
  held_by_prepare: boolean;
}

export interface HandoverCheck {
  problems: string[];
  // what to do about them ('' when there are none)
  hint: string;
  // H as pg_lsn text, when it could be decided
  handoverLsn?: string;
  slot?: ManualSlot;
}

// The application_name of node prepare's replication connection that holds
// the exported snapshot (pg_dump).
export const prepareHolderApplication = 'steep-repl prepare';

// The same pattern as the source_lsn option (init_option_specs).
export const lsnPattern = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;

export async function handoverProblems(source: Queryable, target: Queryable, p: HandoverInput): Promise<HandoverCheck> {
  const problems: string[] = [];
  const hints: string[] = [];
  const refuse = (problem: string, hint: string) => {
    problems.push(problem);
    if (!hints.includes(hint)) hints.push(hint);
  };
  const sourceId = p.sourceNodeId ?? (await localNodeId(source)) ?? 'the source';
  const onSource = `on source node ${sourceId}`;
  const cancel = `steep-repl node cancel ${word(p.targetNodeId)}`;
  const prepareAgain = `cancel (${cancel}), then prepare again (steep-repl node prepare ${word(p.targetNodeId)} --from ${word(sourceId)} --for ${p.backup}) and take a new ${p.backup === 'pg_dump' ? 'dump' : 'base backup'}`;
  const done = (): HandoverCheck => ({ problems, hint: hints.join('; '), ...extra });
  const extra: { handoverLsn?: string; slot?: ManualSlot } = {};

  const slot = await readManualSlot(source, p.slotName);
  extra.slot = slot.manual;
  const { row } = slot;
  const s = slot.manual;

  // The source's record of the prepare (init_slots).
  if (!row) {
    refuse(
      `source node ${sourceId} holds no prepared slot ${p.slotName} (steep_repl.init_slots): it was never prepared there, or it expired, was cancelled or was used already`,
      `prepare it (steep-repl node prepare ${word(p.targetNodeId)} --from ${word(sourceId)} --for ${p.backup}) and take the ${p.backup === 'pg_dump' ? 'dump' : 'base backup'} for it`,
    );
  } else {
    if (s.purpose !== 'manual') {
      refuse(`the prepared slot ${p.slotName} ${onSource} is for a ${s.purpose} init, not a manual one`, `leave it to that init; a manual init needs its own prepare: ${prepareAgain}`);
    }
    if (s.for_node !== p.targetNodeId) {
      refuse(`the prepared slot ${p.slotName} ${onSource} was prepared for node ${s.for_node}, not ${p.targetNodeId}`, `complete ${s.for_node} instead, or ${prepareAgain}`);
    }
    if (!('backup' in row)) {
      refuse(`steep_repl ${onSource} predates manual init (init_slots has no backup column)`, `update steep_repl on ${sourceId} (steep-repl install --db <its url>), then prepare again`);
    } else if (s.backup !== p.backup) {
      refuse(`the slot ${p.slotName} ${onSource} was prepared for ${s.backup ?? 'no backup'}, not ${p.backup}`, prepareAgain);
    }
    if (!s.lsn) {
      refuse(`the prepared slot ${p.slotName} ${onSource} was never finished (node prepare stopped before it recorded the slot's LSN)`, prepareAgain);
    }
    if (slot.expired) {
      refuse(`the prepared slot ${p.slotName} ${onSource} expired at ${s.expires_at} (prepare's --expires)`, prepareAgain);
    }
  }

  // The slot itself.
  if (!s.slot_exists) {
    refuse(`there is no replication slot ${p.slotName} ${onSource} (dropped, or removed at its expiry)`, prepareAgain);
  } else {
    if (slot.otherDatabase) {
      refuse(`the replication slot ${p.slotName} ${onSource} belongs to database ${slot.otherDatabase}, not to the source's database ${slot.database}`, prepareAgain);
    }
    if (slot.slotType !== 'logical' || slot.plugin !== 'pgoutput') {
      refuse(`the replication slot ${p.slotName} ${onSource} is a ${slot.slotType}${slot.plugin ? ` ${slot.plugin}` : ''} slot, not a logical pgoutput one`, prepareAgain);
    }
    if (s.wal_status === 'lost') {
      refuse(
        `the slot ${p.slotName} ${onSource} was invalidated (wal_status lost): the server removed WAL it still needed (max_slot_wal_keep_size), so the changes since ${s.lsn ?? 'its LSN'} are gone`,
        `${prepareAgain}; raise max_slot_wal_keep_size on ${sourceId} (or complete sooner) if the copy takes long`,
      );
    }
    if (s.active_pid && s.active_application !== prepareHolderApplication) {
      refuse(
        `the slot ${p.slotName} ${onSource} is in use by process ${s.active_pid} (application_name ${quoted(s.active_application)}), not by node prepare's snapshot holder`,
        `stop what streams from it (SELECT pg_terminate_backend(${s.active_pid}) on ${sourceId}; a subscription elsewhere must be disabled first), then complete again`,
      );
    }
  }

  // The publication the subscription streams: made before the slot by
  // prepare. One made now would miss the changes written since the slot.
  if (row && !slot.publicationExists) {
    refuse(
      `the publication ${s.publication ?? p.slotName} ${onSource} no longer exists: one made now would not carry the changes written since the slot's LSN ${s.lsn ?? ''}`.trimEnd(),
      prepareAgain,
    );
  }

  // H: L when given (checked against the option's pattern), else the slot's LSN.
  let sourceLsn: string | null = null;
  if (p.sourceLsn !== undefined && p.sourceLsn !== null && p.sourceLsn !== '') {
    if (lsnPattern.test(p.sourceLsn)) sourceLsn = p.sourceLsn;
    else refuse(`--source-lsn ${quoted(p.sourceLsn)} is not an LSN (expected an LSN such as 16/B374D848)`, 'give the LSN the backup was made at, as PostgreSQL prints it (two hexadecimal numbers with a slash)');
  }
  const badLsn = p.sourceLsn !== undefined && p.sourceLsn !== null && p.sourceLsn !== '' && !sourceLsn;
  let recovery: RecoveryEnd | null | undefined = p.recoveryEnd;
  if (p.backup === 'pg_basebackup' && !recovery) recovery = await readRecoveryEnd(target, refuse);

  if (!badLsn && (sourceLsn || s.lsn)) {
    const cmp = await compareLsns(source, {
      h: sourceLsn ?? s.lsn!,
      confirmed: s.confirmed_flush_lsn,
      stop: recovery?.stop_lsn ?? null,
      switchpoint: recovery?.switchpoint ?? null,
    });
    extra.handoverLsn = cmp.h;
    const h = cmp.h;
    if (sourceLsn && cmp.pastCurrent) {
      refuse(
        `--source-lsn ${h} is past source node ${sourceId}'s current WAL position ${cmp.current}: no backup can have been made there`,
        `give the LSN the backup was made at (for a pg_basebackup restore, the recovery_target_lsn it stopped at), or none to use the slot's ${s.lsn ?? 'LSN'}`,
      );
    }
    if (s.slot_exists && cmp.confirmedPast) {
      refuse(
        `the slot ${p.slotName} ${onSource} has confirmed ${s.confirmed_flush_lsn}, past the handover point ${h}${sourceLsn ? ' (--source-lsn)' : " (the slot's LSN)"}: the changes between ${h} and ${s.confirmed_flush_lsn} are gone from it`,
        sourceLsn
          ? `a backup at ${h} cannot be completed from this slot; give no --source-lsn if the backup was made for this prepare, or ${prepareAgain}`
          : `something streamed from the slot since the prepare; ${prepareAgain}`,
      );
    }
    if (p.backup === 'pg_basebackup' && recovery) recoveryProblems(recovery, h, s, sourceId, cmp, refuse, prepareAgain);
  }

  // pg_basebackup: the copy is a physical clone of the source.
  if (p.backup === 'pg_basebackup' && recovery?.system_identifier) {
    const sourceSystem = await systemIdentifier(source);
    if ('error' in sourceSystem) {
      refuse(`the source's system identifier could not be read (${sourceSystem.error})`, `let the role that connects to ${sourceId} execute pg_control_system() (GRANT EXECUTE ON FUNCTION pg_control_system() TO ...), then complete again`);
    } else if (sourceSystem.id !== recovery.system_identifier) {
      refuse(
        `this database's server has system identifier ${recovery.system_identifier}, source node ${sourceId}'s ${sourceSystem.id}: it is not a base backup of that server`,
        `run node complete on the server restored from ${sourceId}'s base backup (--db <its url>)`,
      );
    }
  }

  // A transaction the source had prepared (PREPARE TRANSACTION) before H and
  // not yet finished is in the copy as prepared: it holds its locks there,
  // and the stream brings it whole once the source commits it. It is not
  // the copy's to commit. (ROLLBACK PREPARED cannot run in complete_init's
  // transaction, so the DBA runs it.)
  if (p.backup === 'pg_basebackup') {
    const { rows: prepared } = await target.query(
      'SELECT gid, prepared::text AS prepared FROM pg_catalog.pg_prepared_xacts WHERE database = current_database() ORDER BY prepared, gid',
    );
    if (prepared.length) {
      const gids = prepared.map((x: { gid: string }) => x.gid);
      refuse(
        `this copy holds ${prepared.length} prepared transaction(s) of source node ${sourceId} (${gids.map((g: string) => quoted(g)).join(', ')}): they lock rows here, and the stream brings each one once ${sourceId} commits it`,
        `roll them back on this copy (${gids.map((g: string) => `ROLLBACK PREPARED ${sqlLiteral(g)};`).join(' ')}), then run node complete again`,
      );
    }
  }

  // The subscription's apply worker needs one.
  const workers = await setting(target, 'max_logical_replication_workers');
  if (workers !== null && Number(workers) === 0) {
    refuse(
      `max_logical_replication_workers is 0 on the target's server (the recovery settings set it so the copy's own subscriptions would not start), so no subscription can run there`,
      "reset it (ALTER SYSTEM RESET max_logical_replication_workers, or remove the line from the copy's configuration) and restart the target's server, then run node complete again",
    );
  }
  return done();
}

// "1) ...\n2) ...": the problems as a refusal lists them.
export function numberedProblems(problems: string[]): string {
  return problems.map((problem, i) => `${i + 1}) ${problem}`).join('\n');
}

interface SlotRead {
  row: Record<string, unknown> | null;
  manual: ManualSlot;
  expired: boolean;
  publicationExists: boolean;
  database: string;
  otherDatabase: string | null;
  slotType: string | null;
  plugin: string | null;
}

async function readManualSlot(source: Queryable, slotName: string): Promise<SlotRead> {
  // to_jsonb: the row reads the same on a source without 000008's columns (reported, not failed)
  const { rows } = await source.query(
    `SELECT to_jsonb(i) AS row, i.expires_at <= now() AS expired, current_database() AS database,
            EXISTS (SELECT 1 FROM pg_catalog.pg_publication p WHERE p.pubname = coalesce(i.publication, $1)) AS publication_exists
     FROM (SELECT 1) one LEFT JOIN steep_repl.init_slots i ON i.slot_name = $1`,
    [slotName],
  );
  const row: Record<string, any> | null = rows[0].row;
  const { rows: slots } = await source.query(
    `SELECT s.slot_type, s.plugin, s.database, s.database = current_database() AS here, s.confirmed_flush_lsn::text AS confirmed_flush_lsn,
            s.wal_status, s.active_pid, a.application_name,
            CASE WHEN s.restart_lsn IS NOT NULL
                 THEN greatest(0, pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.restart_lsn))::float8 END AS retained_bytes
     FROM pg_catalog.pg_replication_slots s LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = s.active_pid
     WHERE s.slot_name = $1`,
    [slotName],
  );
  const r = slots[0];
  const manual: ManualSlot = {
    slot_name: slotName,
    for_node: row?.for_node ?? null,
    purpose: row?.purpose ?? null,
    publication: row?.publication ?? null,
    backup: row?.backup ?? null,
    lsn: row?.lsn ?? null,
    snapshot_name: row?.snapshot_name ?? null,
    timeline: row?.timeline ?? null,
    expires_at: row?.expires_at ?? null,
    slot_exists: !!r,
    confirmed_flush_lsn: r?.confirmed_flush_lsn ?? null,
    wal_status: r?.wal_status ?? null,
    retained_bytes: r?.retained_bytes ?? null,
    active_pid: r?.active_pid ?? null,
    active_application: r?.application_name ?? null,
    holder_pid: null,
    held_by_prepare: false,
  };
  manual.holder_pid = manual.snapshot_name ? await findPrepareHolder(source, manual.snapshot_name) : null;
  manual.held_by_prepare = !!manual.holder_pid;
  return {
    row,
    manual,
    expired: !!rows[0].expired,
    publicationExists: !!rows[0].publication_exists,
    database: rows[0].database,
    otherDatabase: r && !r.here ? (r.database ?? 'none') : null,
    slotType: r?.slot_type ?? null,
    plugin: r?.plugin ?? null,
  };
}

// Node prepare's replication connection holding the exported snapshot
// (steep_repl.snapshot_holder: the exporting transaction's virtual xid
// lock, as the slot itself is not active meanwhile); only node prepare's
// own holder counts (application_name 'steep-repl prepare'). null: none.
async function findPrepareHolder(db: Queryable, snapshotName: string): Promise<number | null> {
  const { rows } = await db.query(
    'SELECT a.pid FROM pg_catalog.pg_stat_activity a WHERE a.pid = steep_repl.snapshot_holder($1) AND a.application_name = $2',
    [snapshotName, prepareHolderApplication],
  );
  return rows[0]?.pid ?? null;
}

interface Compared {
  h: string;
  // the source's WAL insert position, and whether H lies beyond it
  current: string;
  pastCurrent: boolean;
  confirmedPast: boolean;
  stopBeforeH: boolean | null;
  switchPastH: boolean | null;
}

// Every comparison in SQL, as pg_lsn.
async function compareLsns(db: Queryable, v: { h: string; confirmed: string | null; stop: string | null; switchpoint: string | null }): Promise<Compared> {
  const { rows } = await db.query(
    `SELECT h::text AS h, w::text AS current, h > w AS past_current, coalesce(c > h, false) AS confirmed_past,
            y < h AS stop_before_h, sp > h AS switch_past_h
     FROM (SELECT $1::pg_lsn AS h, pg_catalog.pg_current_wal_insert_lsn() AS w, $2::pg_lsn AS c, $3::pg_lsn AS y, $4::pg_lsn AS sp) v`,
    [v.h, v.confirmed, v.stop, v.switchpoint],
  );
  const r = rows[0];
  return { h: r.h, current: r.current, pastCurrent: r.past_current, confirmedPast: r.confirmed_past, stopBeforeH: r.stop_before_h, switchPastH: r.switch_past_h };
}

function recoveryProblems(
  r: RecoveryEnd,
  h: string,
  s: ManualSlot,
  sourceId: string,
  cmp: Compared,
  refuse: (problem: string, hint: string) => void,
  prepareAgain: string,
): void {
  const restoreAgain = `restore the base backup again with the recovery settings node prepare printed (recovery_target_lsn = '${h}', recovery_target_inclusive = off, recovery_target_action = promote, recovery_target_timeline = 'current'), let it promote, then run node complete there`;
  if (r.in_recovery) {
    refuse(
      `this server is still in recovery: it has not reached its recovery target ${h} and promoted`,
      `wait until it has promoted (its log says "archive recovery complete"; SELECT pg_is_in_recovery() is false); if it does not, ${restoreAgain}`,
    );
    return;
  }
  if (!r.timeline || r.timeline === 1 || r.parent_timeline === null) {
    refuse(
      `this server was not promoted at a recovery target (timeline ${r.timeline ?? 'unknown'}, no timeline history): nothing says where its copy of the source ends`,
      restoreAgain,
    );
    return;
  }
  const ended = `recovery ended with "${(r.reason ?? 'no reason').trim()}" (timeline ${r.timeline}, switched from ${r.parent_timeline} at ${r.switchpoint ?? 'unknown'})`;
  if (r.stop !== 'before' || !r.stop_lsn) {
    const why =
      r.stop === 'after'
        ? `it replayed the record at ${r.stop_lsn} too (recovery_target_inclusive = on): a commit there would arrive twice`
        : `it did not stop at the handover point ${h}: the transactions it replayed past ${h} would arrive twice`;
    refuse(`${ended}, not "before LSN ${h}": ${why}`, restoreAgain);
  } else if (cmp.stopBeforeH) {
    refuse(
      `${ended}: it stopped before ${r.stop_lsn}, which is before the handover point ${h}, so the transactions committed between ${r.stop_lsn} and ${h} are in neither the copy nor the slot`,
      restoreAgain,
    );
  }
  if (cmp.switchPastH) {
    refuse(`${ended}: it replayed WAL up to ${r.switchpoint}, past the handover point ${h}, and the slot sends what was committed from ${h} on again`, restoreAgain);
  }
  if (s.timeline !== null && r.parent_timeline !== s.timeline) {
    refuse(
      `this server branched from timeline ${r.parent_timeline}, but the slot was made when source node ${sourceId} was on timeline ${s.timeline}`,
      `restore a base backup of ${sourceId} taken on timeline ${s.timeline} (recovery_target_timeline = 'current'), or ${prepareAgain}`,
    );
  }
}

async function readRecoveryEnd(target: Queryable, refuse: (problem: string, hint: string) => void): Promise<RecoveryEnd | null> {
  try {
    return (await target.query('SELECT steep_repl.recovery_end() AS r')).rows[0].r;
  } catch (err) {
    const e = err as { code?: string; message: string };
    if (e.code === '42501') {
      refuse(
        `the copy's timeline history could not be read: ${e.message}`,
        'complete as a superuser, or as a role with pg_read_server_files (steep_repl.recovery_end() reads pg_wal/<timeline>.history)',
      );
    } else {
      refuse(`the copy's end of recovery could not be read: ${e.message}`, 'install steep_repl 0.6.0 or later on the copy, then run node complete again');
    }
    return null;
  }
}

async function systemIdentifier(db: Queryable): Promise<{ id: string } | { error: string }> {
  try {
    return { id: (await db.query('SELECT system_identifier::text AS id FROM pg_catalog.pg_control_system()')).rows[0].id };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

async function setting(db: Queryable, name: string): Promise<string | null> {
  return (await db.query('SELECT current_setting($1, true) AS v', [name])).rows[0].v;
}

async function localNodeId(db: Queryable): Promise<string | undefined> {
  try {
    return (await db.query('SELECT node_id FROM steep_repl.nodes WHERE is_local')).rows[0]?.node_id;
  } catch {
    return undefined;
  }
}

const quoted = (v: string | null) => (v === null ? 'none' : `'${v}'`);
const sqlLiteral = (v: string) => `'${v.replace(/'/g, "''")}'`;
