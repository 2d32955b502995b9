// The life of one verify on the node's agent: claim the run, connect to the
// node and to the peer it replicates from (sessions set alike, the hash
// canary), check every table's definition on both before comparing any,
// then table by table compare, recheck against the lag and record, and
// finish (finish_verify decides divergence and the node's state). Read
// only on both sides: each statement its own snapshot, no long
// transaction. A cancel ends it cancelled; an agent shutdown leaves it to
// the job's next attempt, which starts it over.
import { Client } from 'pg';
import { clientConfig, connect, connectToNode, describeTarget, redactSecrets } from '../../lib/connection';
import { quoteIdent } from '../../lib/identifiers';
import { claimVerify, ClaimedVerify } from '../../lib/sql/claimVerify';
import { finishVerify } from '../../lib/sql/finishVerify';
import { getNode } from '../../lib/sql/getNode';
import { getReplicationName } from '../../lib/sql/getReplicationName';
import { LabelledTable } from '../../lib/sql/queryable';
import { recordVerifyTable } from '../../lib/sql/recordVerifyTable';
import { serverVersionNum } from '../../lib/sql/serverVersionNum';
import { findSubscription } from '../replication/subscription';
import { TaskContext } from '../task';
import { AppliedTarget, settleBothWays } from './applied';
import { VerifyError } from './errors';
import { VerifyProgress } from './progress';
import { checkHashCanary, prepareSession, Side } from './session';
import { TableSql } from './table-sql';
import { keyOrder, readTableShape, shapeDifferences, TableShape } from './table-shape';
import { verifyTable } from './table-verify';

// differences sent to record_verify_table per call
const differencesPerCall = 5000;

interface PlannedTable {
  table: LabelledTable;
  shape: TableShape;
  sql: TableSql;
  note?: string;
}

export async function runVerify(verifyId: number, ctx: TaskContext): Promise<void> {
  const control = await connect(clientConfig(ctx.connectionString, 'steep-repl verify'), describeTarget(ctx.connectionString));
  try {
    const run = await claimVerify(control, verifyId);
    const log = (level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown> = {}) =>
      ctx.logger.log(level, event, { verify_id: verifyId, node_id: run?.node_id, job_id: ctx.jobId, ...fields });
    if (!run) return log('info', 'verify.job_ignored', { reason: 'the verify has ended already or is gone' });
    if (run.cancel_requested_at) {
      await finishVerify(control, verifyId, { outcome: 'cancelled', details: { reason: 'cancelled before the job started' } });
      return;
    }
    await new VerifyJob(run, control, ctx, log).execute();
  } finally {
    await control.end().catch(() => undefined);
  }
}

class VerifyJob {
  private readonly stop = new AbortController();
  private cancelRequested = false;
  private readonly sessions: Client[] = [];
  private readonly progress: VerifyProgress;

  constructor(
    private readonly run: ClaimedVerify,
    private readonly control: Client,
    private readonly ctx: TaskContext,
    private readonly log: (level: 'info' | 'warn' | 'error', event: string, fields?: Record<string, unknown>) => void,
  ) {
    for (const signal of [ctx.cancel, ctx.shutdown]) {
      if (signal.aborted) this.stop.abort(signal.reason);
      else signal.addEventListener('abort', () => this.stop.abort(signal.reason), { once: true });
    }
    this.progress = new VerifyProgress(control, run.verify_id, ctx.logger, () => {
      this.cancelRequested = true;
      this.stop.abort(new Error('cancel requested'));
    });
  }

  async execute(): Promise<void> {
    const { run } = this;
    this.log('info', 'verify.job_started', { peer_node: run.peer_node_id, reason: run.reason, tables: run.tables.length, key_limit: run.key_limit });
    this.progress.start();
    try {
      const outcome = await this.compareAll();
      this.progress.stop();
      await this.progress.runReport({});
      await finishVerify(this.control, run.verify_id, { outcome });
    } catch (err) {
      this.progress.stop();
      const cancelled = this.ctx.cancel.aborted || this.cancelRequested || (await this.cancelAsked());
      if (!cancelled && this.ctx.shutdown.aborted) {
        this.log('info', 'verify.paused', { reason: 'agent stopping; the verify starts over when an agent runs its job again' });
        throw err;
      }
      if (cancelled) {
        await finishVerify(this.control, run.verify_id, { outcome: 'cancelled', details: { reason: 'cancel requested' } });
      } else {
        const hint = (err as { hint?: string }).hint;
        this.log('error', 'verify.job_failed', { error: redactSecrets((err as Error).message), hint });
        await finishVerify(this.control, run.verify_id, {
          outcome: 'failed',
          error: redactSecrets((err as Error).message),
          hint: hint && redactSecrets(hint),
        });
      }
    } finally {
      await Promise.all(this.sessions.map((s) => s.end().catch(() => undefined)));
    }
  }

  private async cancelAsked(): Promise<boolean> {
    const { rows } = await this.control
      .query('SELECT cancel_requested_at FROM steep_repl.verify_runs WHERE verify_id = $1', [this.run.verify_id])
      .catch(() => ({ rows: [] as Array<{ cancel_requested_at: Date | null }> }));
    return !!rows[0]?.cancel_requested_at;
  }

  private async compareAll(): Promise<'equal' | 'differs' | 'unsettled'> {
    const { run } = this;
    const signal = this.stop.signal;
    if (!run.peer_node_id) throw new VerifyError('the peer of this verify is no longer registered', 'verify again, naming the peer');
    const peerNode = await getNode(this.control, run.peer_node_id);
    const node: Side = { client: await this.session(() => connect(clientConfig(this.ctx.connectionString, 'steep-repl verify'), describeTarget(this.ctx.connectionString), signal)), name: `node ${quoteIdent(run.node_id)}` };
    const peer: Side = { client: await this.session(() => connectToNode(peerNode, 'steep-repl verify', signal)), name: `node ${quoteIdent(peerNode.node_id)}` };
    await Promise.all([prepareSession(node.client), prepareSession(peer.client)]);
    await checkHashCanary(peer, node);

    const subscription = await findSubscription(node.client, run.subscription);
    if (!subscription?.slot_name) {
      throw new VerifyError(
        `${node.name} no longer replicates from ${peer.name}: subscription ${run.subscription} ${subscription ? 'has no slot' : 'is gone'}`,
        'verify compares a node with the peer it replicates from; see steep-repl node status',
      );
    }
    const target: AppliedTarget = { peer, node, slot: subscription.slot_name, subscription: run.subscription };
    // a merged pair: the peer subscribes from the node as well
    const reverseName = await getReplicationName(this.control, run.node_id, peerNode.node_id);
    const reverse = await findSubscription(peer.client, reverseName);
    const settle = reverse?.slot_name
      ? settleBothWays(target, { peer: node, node: peer, slot: reverse.slot_name, subscription: reverseName }, signal)
      : undefined;

    // every table's definition first: a mismatch fails the run before anything is compared
    const [peerVersion, nodeVersion] = await Promise.all([serverVersionNum(peer.client), serverVersionNum(node.client)]);
    const planned: PlannedTable[] = [];
    for (const table of run.tables) {
      signal.throwIfAborted();
      const [onPeer, onNode] = await Promise.all([readTableShape(peer.client, table, peerVersion), readTableShape(node.client, table, nodeVersion)]);
      if (!onPeer || !onNode) {
        throw new VerifyError(`table ${table.label} does not exist on ${onPeer ? node.name : peer.name}`, 'steep-repl schema compare shows how the two nodes differ');
      }
      const differences = shapeDifferences(onPeer, onNode, peer.name, node.name);
      if (differences.length) {
        throw new VerifyError(
          `table ${table.label} is defined differently on the two nodes, so its rows cannot be compared: ${differences.join('; ')}`,
          'steep-repl schema compare shows how the two nodes differ; make them alike, then verify again',
        );
      }
      const order = keyOrder(onPeer, onNode);
      planned.push({ table, shape: onPeer, sql: new TableSql(onPeer, order.collateC), note: order.note });
    }
    this.progress.plan(planned.map((p) => ({ ...p.table, rowsEstimate: p.shape.rowsEstimate })));

    const statuses: string[] = [];
    for (const p of planned) {
      signal.throwIfAborted();
      const startedAt = Date.now();
      const verdict = await verifyTable(target, p.sql, p.shape, {
        keyLimit: run.key_limit,
        signal,
        settle,
        note: p.note,
        onStep: (phase, compare, share) =>
          this.progress.step(
            p.table,
            phase,
            {
              compared: p.shape.key.length ? 'key_ranges' : 'whole_table',
              rows_estimate: p.shape.rowsEstimate === null ? null : Math.round(p.shape.rowsEstimate),
              ranges_total: compare.rangesTotal,
              ranges_done: compare.rangesDone,
              ranges_differing: compare.rangesDiffering,
              rows_compared: compare.rowsCompared,
            },
            share,
            phase === 'hashing' ? (p.shape.rowsEstimate ?? 0) : 0,
          ),
        onPeerPosition: (lsn) => this.progress.runReport({ peer_lsn: lsn }),
      });
      const chunks: Array<typeof verdict.differences> = [];
      for (let i = 0; i < verdict.differences.length; i += differencesPerCall) chunks.push(verdict.differences.slice(i, i + differencesPerCall));
      for (const chunk of chunks) await recordVerifyTable(this.control, run.verify_id, p.table, null, chunk);
      await recordVerifyTable(this.control, run.verify_id, p.table, verdict.result);
      statuses.push(verdict.result.status);
      const r = verdict.result;
      this.log(r.status === 'equal' ? 'info' : 'warn', 'verify.table_compared', {
        table: p.table.label,
        status: r.status,
        compared: r.compared,
        rows_compared: r.rows_compared,
        rows_missing: r.rows_missing,
        rows_extra: r.rows_extra,
        rows_different: r.rows_different,
        rows_unsettled: r.rows_unsettled,
        ranges: r.ranges_total,
        ranges_differing: r.ranges_differing,
        recheck_rounds: verdict.rechecks,
        seconds: (Date.now() - startedAt) / 1000,
        note: r.note ?? undefined,
      });
      await this.progress.tableDone(p.table, r.rows_compared);
    }
    return statuses.includes('differs') ? 'differs' : statuses.includes('unsettled') ? 'unsettled' : 'equal';
  }

  private async session(open: () => Promise<Client>): Promise<Client> {
    const client = await open();
    this.sessions.push(client);
    return client;
  }
}
