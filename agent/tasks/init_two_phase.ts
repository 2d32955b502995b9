// Two-phase apply (SPEC 4.3, issue 11): loads a snapshot that snapshot
// generate wrote to files on the source, then streams from a copy of the
// snapshot's slot. The rest of the init's life is the common runner's. See
// docs/init.md, "The two-phase method".
//
//   check    the directory against its manifest and the snapshot against
//            its source, before anything changes (snapshot/verify.ts)
//   start    a copy of the snapshot's slot for this target (the snapshot's
//            own is never consumed, so it serves any number of targets),
//            recorded in init_slots; the parts from the manifest
//   copy     the parts loaded by parallel workers from the files
//            (snapshot/load.ts, copy/workers.ts); sequences; the
//            subscription from the copied slot with the snapshot's
//            publication; then the switch to the pair's publication
//
// Resume: done parts stay (their rows and done mark committed together),
// the others are checked again and loaded; the copied slot is made again
// from the snapshot's while that one lives, if it went.
import { SteepError } from '../../lib/errors';
import { shellWord } from '../../lib/format';
import { tableLabel } from '../../lib/identifiers';
import { Manifest } from '../../lib/snapshot/manifest';
import { listInitParts, planInitParts } from '../../lib/sql/initParts';
import { getSlotLag } from '../../lib/sql/getSlotLag';
import { copyParts } from '../copy/workers';
import { InitMethod, InitRun, initTask, pollMs } from '../init/runner';
import { preparedSlotConsumed } from '../init/reverse-slot';
import { ident } from '../replication/quoting';
import { currentLsn, dropSlot, findSlots } from '../replication/slot';
import { findSubscription, SubscriptionRow } from '../replication/subscription';
import { subscribeFromSlot } from '../copy/handover';
import { isReverseOfPair, publicationTables, readSourceSelf } from '../replication/topology';
import { checkTargetColumns, fileReader, manifestParts, setSnapshotSequences } from '../snapshot/load';
import { partFileProblems, readManifest, SnapshotRefused, verifySnapshot, VerifiedSnapshot } from '../snapshot/verify';

const defaultParallel = 4;
// The copied slot's init_slots row expires a day after the apply last
// showed life (renewed while it loads and switches, and on every resume):
// an apply abandoned for good gives its slot, and the WAL it keeps, back
// by itself; a resumed one whose slot went copies the snapshot's again.
const slotTtlSeconds = 86400;
const renewEveryMs = 60_000;
// how often a wait in the switch says what it waits for
const waitLogMs = 30_000;

// The snapshot this run verified in its plan (check), for start and copy.
const verified = new WeakMap<InitRun, VerifiedSnapshot>();

const twoPhase: InitMethod = {
  agentCopies: true,

  async check(run) {
    const sourceId = run.sourceNode.node_id;
    if (isReverseOfPair(await run.withSource(readSourceSelf), sourceId, run.nodeId)) {
      throw new SteepError(
        `node ${sourceId} is synchronized from ${run.nodeId}: the reverse direction of a pair copies nothing, so no snapshot is loaded`,
        undefined,
        `cancel this one (steep-repl node cancel ${shellWord(run.nodeId)}) and start ${run.nodeId} from ${sourceId} with --method direct or snapshot`,
      );
    }
    const t0 = Date.now();
    const snapshot = await run.withSource((source) =>
      verifySnapshot({ source, snapshot: String(run.options.snapshot), sourceNodeId: sourceId, targetNodeId: run.nodeId, parallel: parallelOf(run) }),
    );
    verified.set(run, snapshot);
    const { manifest } = snapshot;
    run.log('info', 'init.snapshot_verified', {
      snapshot_id: manifest.snapshot_id,
      directory: snapshot.dir,
      consistent_lsn: manifest.consistent_lsn,
      tables: manifest.tables.length,
      parts: manifest.totals?.parts,
      stored_bytes: manifest.totals?.stored_bytes,
      seconds: (Date.now() - t0) / 1000,
    });
  },

  async started(run) {
    return !!run.state.consistent_lsn || !!(await findSubscription(run.target, run.name, run.state.subscription_oid));
  },

  async start(run) {
    const snapshot = verified.get(run)!;
    await run.record({ snapshot_id: snapshot.manifest.snapshot_id });
    await copySnapshotSlot(run, snapshot.manifest);
    await planParts(run, snapshot.manifest);
  },

  // Killed after the slot was copied: the parts may still need planning.
  async resume(run) {
    if (await findSubscription(run.target, run.name, run.state.subscription_oid)) return;
    const { manifest } = await openSnapshot(run);
    await copySnapshotSlot(run, manifest);
    if (!(await listInitParts(run.target, run.nodeId)).length) await planParts(run, manifest);
  },

  async copy(run) {
    const { dir, manifest } = await openSnapshot(run);
    let subscription = await findSubscription(run.target, run.name, run.state.subscription_oid);
    if (!subscription) {
      await copySnapshotSlot(run, manifest);
      await load(run, dir, manifest);
      // the snapshot's publication, made before its slot: every change since the consistent point resolves to it
      subscription = await subscribeFromSlot(run, manifest.publication);
    }
    await switchPublication(run, manifest, subscription);
    await preparedSlotConsumed(run, run.state.slot_name ?? run.name);
    const planned = (await run.refresh()).tables;
    await run.report(planned.map((t) => ({ schema_name: t.schema_name, table_name: t.table_name, state: 'done', rows_copied: t.rows_copied })));
  },
};

const parallelOf = (run: InitRun) => Number(run.options.parallel ?? defaultParallel);

// What to do when the files are not as the manifest lists them.
const filesHint = (run: InitRun) =>
  `copy the snapshot's directory again, whole, from the source agent's machine, then resume (steep-repl node start ${shellWord(run.nodeId)} --from ${shellWord(
    run.sourceNode.node_id,
  )} --resume), or cancel (steep-repl node cancel ${shellWord(run.nodeId)})`;

// The snapshot this init loads, on a run after the one that verified it:
// the option resolved as at the start, the manifest read and checked in
// itself again, and the same snapshot the init began with.
async function openSnapshot(run: InitRun): Promise<{ dir: string; manifest: Manifest }> {
  const known = verified.get(run);
  if (known) return known;
  const option = String(run.options.snapshot);
  const what = `snapshot ${run.state.snapshot_id ?? option}`;
  let dir = option;
  if (!option.startsWith('/')) {
    const { rows } = await run.withSource((s) => s.query('SELECT output_dir FROM steep_repl.snapshots WHERE snapshot_id = $1', [option]));
    if (!rows[0]) throw new SnapshotRefused([`source node ${run.sourceNode.node_id} has no snapshot ${option} any more`], what, `cancel this init (steep-repl node cancel ${shellWord(run.nodeId)})`);
    dir = rows[0].output_dir;
  }
  const { manifest, problems } = await readManifest(dir);
  if (manifest && run.state.snapshot_id && manifest.snapshot_id !== run.state.snapshot_id) {
    problems.push(`${dir} now holds snapshot ${manifest.snapshot_id}, not ${run.state.snapshot_id} this init began to load`);
  }
  if (problems.length || !manifest) throw new SnapshotRefused(problems, what, filesHint(run));
  return { dir, manifest };
}

// A copy of the snapshot's slot under the pair's name: the row first (its
// expiry covers it from the start; prepare_slot.sql), then the copy as a
// statement of its own. A run killed in between finds the row without an
// LSN: a slot of that name made after the row is this init's. A slot of
// the name with no row is a leftover (no subscription uses it: started()
// was false or none exists) and is dropped. The copied slot starts at the
// snapshot's consistent point, as the snapshot's own slot still does
// (checked), so it can be made again on resume if it went.
async function copySnapshotSlot(run: InitRun, manifest: Manifest): Promise<void> {
  const name = run.state.slot_name ?? run.name;
  const copied = await run.withSource(async (source): Promise<boolean> => {
    const { rows } = await source.query('SELECT for_node, purpose, publication, lsn::text AS lsn FROM steep_repl.init_slots WHERE slot_name = $1', [name]);
    let row = rows[0];
    if (row && (row.purpose !== 'two-phase' || row.for_node !== run.nodeId || row.publication !== manifest.publication)) {
      throw new SteepError(
        `the source holds a prepared slot ${name} (${row.purpose}, for ${row.for_node}) that is not this apply's`,
        undefined,
        `drop it on the source if nothing needs it (SELECT steep_repl.expire_prepared_slot('${name}') after UPDATE steep_repl.init_slots SET expires_at = now() WHERE slot_name = '${name}'), then resume`,
      );
    }
    let slot: { slot_name: string; active_pid: number | null } | undefined = (await findSlots(source, [name]))[0];
    if (row?.lsn && slot) return false;
    if (!row && slot) {
      await dropSlot(source, slot);
      run.log('warn', 'init.stale_slot_dropped', { slot_name: name });
      slot = undefined;
    }
    const { rows: at } = await source.query(
      'SELECT confirmed_flush_lsn::text AS lsn, wal_status FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()',
      [manifest.slot_name],
    );
    if (!slot && (!at[0] || at[0].lsn !== manifest.consistent_lsn || at[0].wal_status === 'lost')) {
      const why = !at[0] ? 'no longer exists (expired or deleted)' : at[0].wal_status === 'lost' ? 'was invalidated' : `moved to ${at[0].lsn}`;
      throw new SteepError(
        `the slot ${name} this apply streams from is gone, and the snapshot's slot ${manifest.slot_name} ${why}, so it cannot be copied again`,
        undefined,
        `cancel this init (steep-repl node cancel ${shellWord(run.nodeId)}), generate a new snapshot (steep-repl snapshot generate ${shellWord(run.sourceNode.node_id)} --output <an empty directory>) and apply that one`,
      );
    }
    if (!row) {
      row = (
        await source.query("SELECT lsn::text AS lsn FROM steep_repl.prepare_slot($1, $2, 'two-phase', $3, make_interval(secs => $4))", [
          name,
          run.nodeId,
          manifest.publication,
          slotTtlSeconds,
        ])
      ).rows[0];
    }
    try {
      if (!slot) await source.query('SELECT * FROM pg_copy_logical_replication_slot($1, $2)', [manifest.slot_name, name]);
      const { rows: copied } = await source.query('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [name]);
      if (copied[0]?.lsn !== manifest.consistent_lsn) {
        throw new SteepError(`the slot ${name} copied from ${manifest.slot_name} starts at ${copied[0]?.lsn ?? 'nothing'}, not at the snapshot's ${manifest.consistent_lsn}`);
      }
      await source.query('SELECT steep_repl.prepared_slot_created($1, $2)', [name, manifest.consistent_lsn]);
      return true;
    } catch (err) {
      // not made (no free slot, say): the row and any slot go now, not at expiry
      await source.query('UPDATE steep_repl.init_slots SET expires_at = now() WHERE slot_name = $1', [name]).catch(() => undefined);
      await source.query('SELECT steep_repl.expire_prepared_slot($1)', [name]).catch(() => undefined);
      throw err;
    }
  });
  if (!copied) return renewSlot(run, name);
  await run.record({ slot_name: name, consistent_lsn: manifest.consistent_lsn });
  run.log('info', 'init.slot_copied', { slot_name: name, from: manifest.slot_name, consistent_lsn: manifest.consistent_lsn, expires_in_seconds: slotTtlSeconds });
}

async function renewSlot(run: InitRun, name = run.state.slot_name ?? run.name): Promise<void> {
  await run.withSource(async (s) =>
    s.query(
      "UPDATE steep_repl.init_slots SET expires_at = greatest(expires_at, now() + make_interval(secs => $2)) WHERE slot_name = $1 AND purpose = 'two-phase'",
      [name, slotTtlSeconds],
    ),
  );
}

async function planParts(run: InitRun, manifest: Manifest): Promise<void> {
  const parts = manifestParts(manifest);
  const count = await planInitParts(run.target, run.nodeId, parts);
  const split = [...new Set(parts.filter((p) => p.part_count > 1).map((p) => `${tableLabel(p)} (${p.split}, ${p.part_count})`))];
  run.log('info', 'init.parts_planned', { parts: count, split, snapshot_id: manifest.snapshot_id });
  if (!count && manifest.tables.length) throw new SteepError(`the manifest of snapshot ${manifest.snapshot_id} lists no parts for ${manifest.tables.length} table(s)`);
}

// The parts not yet done, by parallel workers; then the snapshot's sequences.
async function load(run: InitRun, dir: string, manifest: Manifest): Promise<void> {
  const parts = await listInitParts(run.target, run.nodeId);
  const pending = parts.filter((p) => p.state !== 'done');
  const parallel = parallelOf(run);
  if (pending.length) {
    // a later run: the directory may have changed while the apply was stopped
    if (!verified.has(run)) {
      const problems = await partFileProblems(dir, manifest, pending, parallel);
      if (problems.length) throw new SnapshotRefused(problems, `snapshot ${manifest.snapshot_id}`, filesHint(run));
      run.log('info', 'init.snapshot_files_checked', { parts: pending.length, note: 'the files of the parts still to load, checked again' });
    }
    await checkTargetColumns(run.target, manifest, `make the target's tables match the source's (the schema step compares them: steep-repl schema diff), then resume or cancel`);
    const renew = setInterval(() => renewSlot(run).catch((err) => run.log('warn', 'init.slot_renew_failed', { error: (err as Error).message })), renewEveryMs);
    try {
      await copyParts(run, fileReader(dir, manifest, filesHint(run)), parts, parallel);
    } finally {
      clearInterval(renew);
    }
  }
  const left = (await listInitParts(run.target, run.nodeId)).filter((p) => p.state !== 'done');
  if (left.length) throw new SteepError(`${left.length} part(s) of snapshot ${manifest.snapshot_id} were not loaded`);
  const sequences = await setSnapshotSequences(run.target, dir, manifest);
  run.log('info', 'init.sequences_set', { from: 'snapshot', set: sequences.set.length, missing: sequences.missing });
}

// The pair's publication P was made after the slot's consistent point, so
// a change older than P cannot be matched to it (pgoutput resolves the
// names with the catalog as of each change it decodes: such a change does
// not arrive, test/snapshot-apply-switch.test.ts). Once every transaction
// that may have written before P existed has ended on the source (the
// snapshot's xmin passes the xmax read right after P existed) and the slot
// confirmed a position after that, whatever the subscription decodes from
// there was written with P in the catalog: it can stream P. S (the
// snapshot's) and P publish the same tables (checked).
async function switchPublication(run: InitRun, manifest: Manifest, subscription: SubscriptionRow): Promise<void> {
  const { rows } = await run.target.query('SELECT subpublications FROM pg_subscription WHERE oid = $1::int8::oid', [subscription.oid]);
  const publications: string[] = rows[0]?.subpublications ?? [];
  if (publications.length === 1 && publications[0] === run.name) return;
  const slot = run.state.slot_name ?? run.name;
  const t0 = Date.now();

  let xmax = run.state.publication_xmax;
  if (!xmax) {
    // recorded by the plan; an init without it reads it now (later: safe)
    xmax = await run.withSource(async (s) => (await s.query('SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x')).rows[0].x as string);
    await run.record({ publication_xmax: xmax });
  }
  await waitOn(run, 'transactions older than the publication to end', async () => {
    const { rows: now } = await run.withSource((s) =>
      s.query(
        `SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::xid8 AS ended,
                (SELECT string_agg(format('pid %s (%s, since %s)', a.pid, coalesce(a.datname, '?'), a.xact_start), ', ')
                 FROM pg_stat_activity a WHERE a.backend_xid IS NOT NULL AND a.pid <> pg_backend_pid()) AS writers`,
        [xmax],
      ),
    );
    return now[0].ended ? true : `the source still runs transactions that may predate publication ${run.name}: ${now[0].writers ?? 'prepared transactions (pg_prepared_xacts)'}`;
  });
  const after = await run.withSource(currentLsn);
  await waitOn(run, `the slot to confirm ${after}`, async () => {
    const lag = await run.withSource((s) => getSlotLag(s, slot, after));
    if (!lag.slot_exists) throw new SteepError(`the slot ${slot} no longer exists on source node ${run.sourceNode.node_id}`, undefined, 'cancel this init and start it again');
    return lag.reached ? true : `the subscription has confirmed ${lag.confirmed_lsn ?? 'nothing'} of ${after}`;
  });

  const [fromTables, toTables] = await run.withSource(async (s) => [await publicationTables(s, manifest.publication), await publicationTables(s, run.name)]);
  if (fromTables.join('\n') !== toTables.join('\n')) {
    throw new SteepError(
      `the snapshot's publication ${manifest.publication} covers ${fromTables.join(', ') || 'no tables'} but the pair's ${run.name} ${toTables.join(', ') || 'no tables'} on source node ${run.sourceNode.node_id}: a publication was changed during the apply`,
      undefined,
      `cancel this init (steep-repl node cancel ${shellWord(run.nodeId)}) and apply a new snapshot; leave publications to steep-repl while an init runs`,
    );
  }
  await run.target.query(`ALTER SUBSCRIPTION ${ident(subscription.name)} SET PUBLICATION ${ident(run.name)} WITH (refresh = false)`);
  run.log('info', 'init.publication_switched', { subscription: subscription.name, from: manifest.publication, to: run.name, confirmed_after: after, seconds: (Date.now() - t0) / 1000 });
}

// Polls until ready() says true; what it returns otherwise is logged now and then.
async function waitOn(run: InitRun, what: string, ready: () => Promise<true | string>): Promise<void> {
  let loggedAt = Date.now();
  let renewedAt = Date.now();
  let reportedAt = 0;
  for (;;) {
    run.checkpoint();
    const answer = await ready();
    if (answer === true) return;
    // a cancel requested from SQL is seen in what the report returns
    if (Date.now() - reportedAt >= pollMs) {
      await run.report([]);
      reportedAt = Date.now();
    }
    if (Date.now() - loggedAt >= waitLogMs) {
      run.log('info', 'init.switch_waiting', { waiting_for: what, reason: answer });
      loggedAt = Date.now();
    }
    if (Date.now() - renewedAt >= renewEveryMs) {
      await renewSlot(run);
      renewedAt = Date.now();
    }
    await run.pause(Math.min(pollMs, 250));
  }
}

export const init_two_phase = initTask(twoPhase);
