// The life of one merge job on node A's agent (docs: SPEC 4.6, the team
// sheet of issue 14): claim the run, connect to B, check both nodes
// (checks.ts); a read-only run (analyze, dry-run, manual record) compares
// on one transaction per node and ends. A merge: both nodes enter it, the
// pair's leftovers go, the merge points are made (snapshots.ts), every
// table is compared and decided (compare-step.ts), the exchange commits
// (exchange-step.ts), the subscriptions both ways start from the merge
// points (subscribe.ts) and catch up, and the final verify decides
// synchronized or diverged (final-verify.ts).
// Resume: a job run again (the agent died or stopped) starts over at the
// merge points unless a node recorded its exchange; then it goes on at
// the subscriptions. A cancel or a failure before the exchange removes the
// replication objects and leaves the rows as they were; a cancel after it
// removes them too (the rows exchanged stay); a failure after it keeps
// everything and the job runs again.
import { clientConfig, connect, describeTarget, nodeConninfo, redactSecrets } from '../../lib/connection';
import { errorFields, SteepError } from '../../lib/errors';
import { quoteIdent } from '../../lib/identifiers';
import { claimMerge, ClaimedMerge } from '../../lib/sql/claimMerge';
import { finishMerge } from '../../lib/sql/finishMerge';
import { getNode } from '../../lib/sql/getNode';
import { mergeNodeBegin } from '../../lib/sql/mergeNodeBegin';
import { mergeNodeFinish, MergeNodeEnd } from '../../lib/sql/mergeNodeFinish';
import { mergeNodeStep } from '../../lib/sql/mergeNodeStep';
import { mergeStatus, stepsPastExchange } from '../../lib/sql/mergeStatus';
import type { MergeFailureKind, MergeNodeState } from '../../lib/sql/mergeStatus';
import { recordMergeTable } from '../../lib/sql/recordMergeTable';
import { classify } from '../init/failure';
import { checkInitPrivileges } from '../init/privileges';
import { TaskContext } from '../task';
import { checkPeer, checkTables, Plan } from './checks';
import { ApplyWatch } from './apply-errors';
import { removeReplicationObjects } from './cleanup';
import { compareAll } from './compare-step';
import { MergeContext } from './context';
import { MergeCancelled, MergeError } from './errors';
import { exchange } from './exchange-step';
import { divergence, verifyMergedTables } from './final-verify';
import { pairNames } from './names';
import { readNodePart } from './node-part';
import { closeSession, openSession } from './sessions';
import { alignSequences } from './sequences';
import { makeMergePoints, openReaders } from './snapshots';
import { subscribeBoth, waitCaughtUp } from './subscribe';


export async function runMerge(mergeId: number, ctx: TaskContext): Promise<void> {
  const control = await connect(clientConfig(ctx.connectionString, 'steep-repl merge'), describeTarget(ctx.connectionString));
  control.on('error', (err) => ctx.logger.log('warn', 'merge.connection_error', { merge_id: mergeId, error: redactSecrets(err.message) }));
  try {
    const run = await claimMerge(control, mergeId);
    if (!run) {
      ctx.logger.log('info', 'merge.job_ignored', { merge_id: mergeId, job_id: ctx.jobId, reason: 'the merge has ended already or is gone' });
      return;
    }
    const log = (level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown> = {}) =>
      ctx.logger.log(level, event, { merge_id: mergeId, node_a: run.node_a, node_b: run.node_b, job_id: ctx.jobId, ...fields });
    const [a, b] = [await getNode(control, run.node_a), await getNode(control, run.node_b)];
    const m = new MergeContext(run, control, ctx, { a, b }, await pairNames(control, run.node_a, run.node_b), log);
    await new MergeJob(m).execute();
  } finally {
    await control.end().catch(() => undefined);
  }
}

class MergeJob {
  constructor(private readonly m: MergeContext) {}

  private get run(): ClaimedMerge {
    return this.m.run;
  }

  async execute(): Promise<void> {
    const { m, run } = this;
    m.log('info', 'merge.job_started', {
      mode: run.mode,
      strategy: run.strategy,
      tables: run.tables.length,
      step: run.step,
      resumed: run.resumed,
      attempt: m.ctx.helpers?.job?.attempts,
    });
    m.progress.start();
    try {
      if (run.cancel_requested_at) throw new MergeCancelled(`merge ${run.merge_id}`);
      await this.main();
    } catch (err) {
      await this.ended(err);
    } finally {
      m.progress.stop();
      await m.closeWriters();
      await m.closeReaders();
      await m.peer.close();
    }
  }

  private async main(): Promise<void> {
    const { m, run } = this;
    await m.peer.run((b) => checkPeer(b, run.node_b));
    const plan = await checkTables(run, m.control, m.peer);
    m.checkpoint();
    if (run.mode !== 'merge') return this.analysis(plan);
    await this.checkPrivileges(plan);
    const earlier = await this.earlierAttempt();
    if (earlier) {
      m.began.a = m.began.b = true;
      m.exchanged = true;
    }
    if (earlier === 'verified') return this.endAsVerified();
    if (earlier === 'exchanged') {
      m.log('info', 'merge.resumed', { at: 'subscriptions', reason: 'a node committed its exchange' });
      m.progress.nodes = true;
    } else {
      await this.begin();
      await this.prepare(plan);
      const tables = await compareAll(m, plan);
      await exchange(m, plan, tables);
    }
    await this.subscribe();
    await this.verify(plan);
  }

  // analyze, dry-run, record: read only, on one transaction per node.
  private async analysis(plan: Plan): Promise<void> {
    const { m, run } = this;
    await m.progress.enter('comparing');
    m.readers = await openReaders(m.endpoints, m.signal);
    await compareAll(m, plan);
    await m.closeReaders();
    await m.progress.halt();
    const outcome = run.mode === 'record' ? 'resolving' : 'analyzed';
    await finishMerge(m.control, m.id, { outcome });
    m.log('info', 'merge.analyzed', { outcome, ...m.progress.totals });
  }

  // How far an earlier attempt got: a node committed its share of the
  // exchange, or the final verify ended a node already (killed before the
  // run ended); undefined: start at the merge points.
  private async earlierAttempt(): Promise<'exchanged' | 'verified' | undefined> {
    const { m, run } = this;
    if (!run.resumed && (m.ctx.helpers?.job?.attempts ?? 1) <= 1) return undefined;
    const states = (await this.nodeParts()).filter((s) => s !== undefined);
    if (states.some((s) => s.outcome === 'synchronized' || s.outcome === 'diverged')) return 'verified';
    if (stepsPastExchange.includes(run.step) || states.some((s) => stepsPastExchange.includes(s.step))) return 'exchanged';
    return undefined;
  }

  // Each node's part in this merge (undefined: the node is not in it).
  private async nodeParts(): Promise<[MergeNodeState | undefined, MergeNodeState | undefined]> {
    const { m, run } = this;
    const mine = (part: MergeNodeState | undefined) => (part?.merge_id === m.id ? part : undefined);
    return [mine(await readNodePart(m.control, run.node_a)), mine(await m.peer.run((b) => readNodePart(b, run.node_b)))];
  }

  // Killed between the nodes' ends and the run's: the verify recorded per
  // table decides, for the node not ended yet and the run.
  private async endAsVerified(): Promise<void> {
    const { m, run } = this;
    const { tables } = await mergeStatus(m.control, m.id);
    const differs = tables
      .filter((t) => t.verify?.status === 'differs')
      .map((t) => ({
        schema_name: t.schema_name,
        table_name: t.table_name,
        rows_missing: t.verify!.rows_missing,
        rows_extra: t.verify!.rows_extra,
        rows_different: t.verify!.rows_different,
      }));
    const end: MergeNodeEnd = differs.length ? { outcome: 'diverged', divergence: differs } : { outcome: 'synchronized' };
    await m.progress.halt();
    // the same outcome again changes nothing on a node that has it
    await m.peer.run((b) => mergeNodeFinish(b, run.node_b, m.id, end));
    await mergeNodeFinish(m.control, run.node_a, m.id, end);
    await finishMerge(m.control, m.id, { outcome: differs.length ? 'differs' : 'merged' });
    m.log('info', 'merge.completed', { outcome: differs.length ? 'differs' : 'merged', resumed: true });
  }

  // Each node is a source (publication, slot) and a target (subscription,
  // the exchange's writes as an apply worker makes them): what their roles
  // lack is named before anything is created, as for an init.
  private async checkPrivileges(plan: Plan): Promise<void> {
    const { m, run } = this;
    const tables = plan.tables.map((t) => t.table);
    // the exchange reads the rows, inserts and updates them
    const tablePrivileges = ['SELECT', 'INSERT', 'UPDATE'];
    try {
      await m.peer.run((b) =>
        checkInitPrivileges({ source: m.control, target: b, sourceNodeId: run.node_a, targetNodeId: run.node_b, tables, publication: m.names.ab, agentCopies: true, tablePrivileges }),
      );
      await m.peer.run((b) =>
        checkInitPrivileges({ source: b, target: m.control, sourceNodeId: run.node_b, targetNodeId: run.node_a, tables, publication: m.names.ba, agentCopies: true, tablePrivileges }),
      );
    } catch (err) {
      if (!(err instanceof SteepError)) throw err;
      throw new MergeError(err.message, 'refused', err.hint);
    }
  }

  // Both nodes enter the merge (preparing). B refusing leaves A as it was.
  private async begin(): Promise<void> {
    const { m, run } = this;
    await m.progress.enter('preparing');
    const request = (role: 'a' | 'b') => ({ merge_id: m.id, coordinator: run.node_a, role, strategy: run.strategy, tables_total: run.tables.length });
    try {
      await mergeNodeBegin(m.control, run.node_a, run.node_b, request('a'));
    } catch (err) {
      throw refused(err);
    }
    m.began.a = true;
    try {
      await this.endStaleMergeOnB();
      await m.peer.run((b) => mergeNodeBegin(b, run.node_b, run.node_a, request('b')));
    } catch (err) {
      const e = err as { code?: string };
      if (!['SR003', 'SR004', 'SR006'].includes(e.code ?? '')) throw err;
      await mergeNodeFinish(m.control, run.node_a, m.id, { outcome: 'unchanged', details: { reason: `node ${run.node_b} refused the merge` } });
      m.began.a = false;
      throw refused(err);
    }
    m.began.b = true;
    m.progress.nodes = true;
  }

  // B still in an earlier merge of this coordinator whose run has ended:
  // B was unreachable when that run failed or was cancelled, so its end was
  // never written there. Only A's database knows the run is over; it ends
  // B's part as failed, which a new merge may start from.
  private async endStaleMergeOnB(): Promise<void> {
    const { m, run } = this;
    const stale = await m.peer.run((b) => readNodePart(b, run.node_b));
    if (!stale || stale.coordinator !== run.node_a || stale.merge_id === m.id || stale.outcome) return;
    const { rows } = await m.control.query('SELECT state FROM steep_repl.merge_runs WHERE merge_id = $1', [stale.merge_id]);
    if (rows[0] && ['queued', 'running'].includes(rows[0].state)) return;
    const error = `merge ${stale.merge_id} ended ${rows[0] ? rows[0].state : '(its run is gone)'} on node ${quoteIdent(run.node_a)} while this node was unreachable`;
    await m.peer.run((b) => mergeNodeFinish(b, run.node_b, stale.merge_id, { outcome: 'failed', error }));
    m.log('warn', 'merge.stale_node_ended', { node: run.node_b, stale_merge_id: stale.merge_id, run_state: rows[0]?.state ?? null });
  }

  // Leftovers of an earlier attempt removed, then the merge points.
  private async prepare(plan: Plan): Promise<void> {
    const { m } = this;
    await m.pauseAt('prepared');
    const removal = await removeReplicationObjects(m.control, m.peer, m.names, m.run.node_a, m.run.node_b);
    if (removal.removed.length) m.log('warn', 'merge.leftovers_removed', { removed: removal.removed });
    if (removal.failed.length) throw new MergeError(`could not remove what an earlier attempt left: ${removal.failed.join('; ')}`, 'connection');
    const points = await makeMergePoints({
      a: m.control,
      b: m.peer,
      endpoints: m.endpoints,
      names: m.names,
      tables: plan.tables.map((t) => t.table),
      signal: m.signal,
    });
    m.readers = points;
    m.progress.step = 'prepared';
    await m.progress.send({ lsn_a: points.lsnA, lsn_b: points.lsnB });
    m.log('info', 'merge.merge_points', { lsn_a: points.lsnA, lsn_b: points.lsnB, slot_a: m.names.ab, slot_b: m.names.ba });
    await this.stepBoth('comparing', 'copying');
    await m.progress.enter('comparing', { node: 'comparing' });
    await m.pauseAt('compared');
  }

  private async stepBoth(step: string, state: 'copying' | 'catching_up' | null): Promise<void> {
    const { m, run } = this;
    m.progress.nodeStep = step;
    await mergeNodeStep(m.control, run.node_a, m.id, step, state, { ...m.progress.nodeProgress('a'), error: null });
    await m.peer.run((b) => mergeNodeStep(b, run.node_b, m.id, step, state, { ...m.progress.nodeProgress('b'), error: null }));
  }

  private async subscribe(): Promise<void> {
    const { m, run } = this;
    await m.pauseAt('subscribed');
    await m.progress.enter('catching_up');
    // here rather than in the exchange: a job resumed past it aligns them too (it is idempotent)
    const sequences = await alignSequences(m.control, m.peer);
    const made = await subscribeBoth(m.control, m.peer, m.names, await this.conninfos(), { a: run.node_a, b: run.node_b });
    await this.stepBoth('subscribed', 'catching_up');
    m.progress.step = 'subscribed';
    await m.progress.send({ error: null });
    m.log('info', 'merge.subscribed', { subscriptions: made, resumed: !made.length, sequences_aligned: sequences.length });
    m.applyWatch = await ApplyWatch.start(m.control, m.peer, m.names, { a: run.node_a, b: run.node_b });
    await m.pauseAt('caught_up');
    const lag = await waitCaughtUp(
      m.control,
      m.peer,
      m.names,
      { a: run.node_a, b: run.node_b },
      m.deadline,
      m.signal,
      (l) => {
        const bytes = Number(l.a.lag_bytes ?? 0) + Number(l.b.lag_bytes ?? 0);
        m.progress.fraction = bytes ? Math.min(0.9, m.progress.fraction + 0.05) : 0.9;
      },
      m.applyWatch,
    );
    m.log('info', 'merge.caught_up', { confirmed_a: lag.a.confirmed_lsn, confirmed_b: lag.b.confirmed_lsn });
  }

  // How each node's server reaches the other: B's registry row for A (B's
  // view of the network; merge_node_begin made sure B knows A), A's for B.
  private async conninfos(): Promise<{ a: string; b: string }> {
    const { m, run } = this;
    const aFromB = await m.peer.run((b) => getNode(b, run.node_a));
    return { a: nodeConninfo(aFromB), b: nodeConninfo(m.nodes.b) };
  }

  private async verify(plan: Plan): Promise<void> {
    const { m, run } = this;
    await m.pauseAt('verified');
    await m.progress.enter('verifying', { node: 'verifying' });
    const a = await openSession(m.endpoints.a, 'steep-repl merge verify', m.signal);
    const sessions = { a, b: await openSession(m.endpoints.b, 'steep-repl merge verify', m.signal).catch(async (err) => {
      await closeSession(a);
      throw err;
    }) };
    try {
      const n = plan.tables.length;
      let done = 0;
      const verified = await verifyMergedTables({
        sessions,
        names: m.names,
        nodes: { a: run.node_a, b: run.node_b },
        tables: plan.tables,
        signal: m.signal,
        onTable: (p, share) => {
          m.progress.currentTable = p.table.label;
          m.progress.fraction = (done + share) / n;
        },
        onVerified: async (v) => {
          done += 1;
          m.progress.tablesDone = done;
          await recordMergeTable(m.control, m.id, v.p.table, { status: v.verify.status, verify: v.verify, note: v.note, finished_at: new Date() });
        },
      });
      const differs = divergence(verified);
      m.progress.step = 'verified';
      await m.progress.halt();
      await m.progress.send();
      const end: MergeNodeEnd = differs.length ? { outcome: 'diverged', divergence: differs } : { outcome: 'synchronized' };
      await m.peer.run((b) => mergeNodeFinish(b, run.node_b, m.id, end));
      await mergeNodeFinish(m.control, run.node_a, m.id, end);
      await finishMerge(m.control, m.id, { outcome: differs.length ? 'differs' : 'merged' });
      m.log(differs.length ? 'warn' : 'info', 'merge.completed', {
        outcome: differs.length ? 'differs' : 'merged',
        tables: verified.map((v) => ({ table: v.p.table.label, ...v.verify })),
      });
    } finally {
      await Promise.all([closeSession(sessions.a), closeSession(sessions.b)]);
    }
  }

  private async cancelAsked(): Promise<boolean> {
    const { rows } = await this.m.control
      .query('SELECT cancel_requested_at FROM steep_repl.merge_runs WHERE merge_id = $1', [this.m.id])
      .catch(() => ({ rows: [] as Array<{ cancel_requested_at: Date | null }> }));
    return !!rows[0]?.cancel_requested_at;
  }

  // How a run ends on an error: paused (the agent stops), cancelled, failed
  // with the nodes as they were (before the exchange), or, after it, kept
  // as it is for the job's next attempt.
  private async ended(err: unknown): Promise<void> {
    const { m, run } = this;
    const cancelled = !!m.cancelledBy || err instanceof MergeCancelled || m.ctx.cancel.aborted || (await this.cancelAsked());
    await m.closeWriters();
    await m.closeReaders();
    if (!cancelled && m.ctx.shutdown.aborted) {
      m.log('info', 'merge.paused', { step: m.progress.step, exchanged: m.exchanged, reason: 'agent stopping: the merge resumes when an agent runs its job again' });
      throw err;
    }
    await m.progress.halt();
    if (cancelled) return this.cancelled();
    // a wait that failed (catch-up, the final verify's rechecks) because an apply worker keeps failing
    err = (await this.applyFailure(err)) ?? err;
    const { error, hint } = errorFields(err);
    const kind: MergeFailureKind = err instanceof MergeError ? err.kind : failureKind(err);
    // no new attempt gets past a timeout or an apply that keeps failing
    const retry = m.exchanged && kind !== 'timeout' && kind !== 'concurrent' && !m.lastAttempt;
    m.log('error', 'merge.job_failed', { step: m.progress.step, error, hint, kind, exchanged: m.exchanged, retrying: retry });
    if (retry) {
      // past the point of no return: recorded, then the job runs again from the subscriptions
      await m.progress.send({ error });
      await this.stepBothQuietly({ error });
      throw err;
    }
    const rerun = `run the merge again: ${rerunCommand(run)}`;
    const details: Record<string, unknown> = {};
    if (!m.exchanged && (m.began.a || m.began.b)) {
      const removal = await removeReplicationObjects(m.control, m.peer, m.names, run.node_a, run.node_b);
      details.removed = removal.removed;
      if (removal.failed.length) details.not_removed = removal.failed;
    }
    const nodeEnd: MergeNodeEnd = { outcome: 'failed', error, hint: hint ?? rerun, details: { kind } };
    if (m.began.b) await this.quietly('b', () => m.peer.run((b) => mergeNodeFinish(b, run.node_b, m.id, nodeEnd)));
    if (m.began.a) {
      const aEnd: MergeNodeEnd = m.began.b || m.exchanged ? nodeEnd : { outcome: 'unchanged', details: { reason: 'failed', error } };
      await this.quietly('a', () => mergeNodeFinish(m.control, run.node_a, m.id, aEnd));
    }
    await finishMerge(m.control, m.id, { outcome: 'failed', error, kind, hint: hint ?? (m.began.a ? rerun : undefined), details });
  }

  private async applyFailure(err: unknown): Promise<MergeError | undefined> {
    if (!this.m.applyWatch || (err instanceof MergeError && err.kind === 'concurrent')) return undefined;
    try {
      await this.m.applyWatch.check();
    } catch (failing) {
      if (failing instanceof MergeError) return failing;
    }
    return undefined;
  }

  private async cancelled(): Promise<void> {
    const { m, run } = this;
    const details: Record<string, unknown> = { by: m.cancelledBy ?? 'cancel requested' };
    // a cancel this attempt found at its start (asked while the agent was
    // down, or for a job that was gone): what an earlier one did is on the nodes
    if (!m.began.a && !m.began.b) {
      const parts = await this.nodeParts().catch(() => [undefined, undefined] as const);
      const open = (p: MergeNodeState | undefined) => !!p && !p.outcome;
      [m.began.a, m.began.b] = [open(parts[0]), open(parts[1])];
      m.exchanged = parts.some((p) => open(p) && stepsPastExchange.includes(p!.step));
    }
    if (m.began.a || m.began.b) {
      const removal = await removeReplicationObjects(m.control, m.peer, m.names, run.node_a, run.node_b);
      details.removed = removal.removed;
      if (removal.failed.length) details.not_removed = removal.failed;
      const end: MergeNodeEnd = { outcome: 'cancelled', details: { exchanged: m.exchanged } };
      if (m.began.b) await this.quietly('b', () => m.peer.run((b) => mergeNodeFinish(b, run.node_b, m.id, end)));
      if (m.began.a) await this.quietly('a', () => mergeNodeFinish(m.control, run.node_a, m.id, end));
    }
    if (m.exchanged) details.note = 'the rows the exchange wrote stay on both nodes';
    await finishMerge(m.control, m.id, { outcome: 'cancelled', exchanged: m.exchanged, details });
    m.log('info', 'merge.cancelled', { exchanged: m.exchanged, ...details });
  }

  // A node's end that cannot be written (it is unreachable) is logged; the run still ends.
  private async quietly(node: 'a' | 'b', work: () => Promise<unknown>): Promise<void> {
    try {
      await work();
    } catch (err) {
      this.m.log('warn', 'merge.node_not_finished', { node: node === 'a' ? this.run.node_a : this.run.node_b, ...errorFields(err) });
    }
  }

  private async stepBothQuietly(progress: { error: string | null }): Promise<void> {
    const { m, run } = this;
    const step = m.progress.nodeStep;
    await this.quietly('a', () => mergeNodeStep(m.control, run.node_a, m.id, step, null, progress));
    await this.quietly('b', () => m.peer.run((b) => mergeNodeStep(b, run.node_b, m.id, step, null, progress)));
  }
}

function failureKind(err: unknown): MergeFailureKind {
  const kind = classify(err);
  return kind === 'schema_mismatch' ? 'schema' : kind;
}

function refused(err: unknown): MergeError {
  const { error, hint } = errorFields(err);
  return new MergeError(error, 'refused', hint);
}

// The command a DBA runs again (node ids quoted for a shell where needed).
function rerunCommand(run: ClaimedMerge): string {
  const sh = (v: string) => (/^[\w.@:-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);
  const strategy =
    run.strategy === 'manual' ? '--apply' : `--strategy ${run.strategy}${run.strategy === 'last-modified' ? ` --column ${sh(run.options.column ?? '')}` : ''}`;
  return `steep-repl node merge ${sh(run.node_a)} ${sh(run.node_b)} ${strategy}${run.options.quiesce ? ' --quiesce' : ''}`;
}
