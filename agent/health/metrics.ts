// The agent's Prometheus metrics: set from the watch's last round (the
// rows observe_replication returned and the local row of node_overview),
// served by metrics-server.ts. Every series of a round replaces the last
// round's, so a subscription or slot that is gone leaves no series behind.
// Label values are ids and names as they are; prom-client escapes them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { packageRoot } from '../../lib/paths';
import type { ReplicationHealthRow } from '../../lib/sql/listNodes';

// What the metrics read of a replication_health row.
export type HealthRowFacts = Pick<
  ReplicationHealthRow,
  | 'kind' | 'name' | 'peer_node_id' | 'status' | 'enabled' | 'worker_pid' | 'apply_error_count' | 'sync_error_count' | 'conflicts'
  | 'last_msg_receipt_time' | 'lag_bytes' | 'lag_seconds' | 'lag_seconds_at_least' | 'slot_active' | 'wal_status' | 'safe_wal_size' | 'retained_bytes' | 'prepared'
>;

// bigint and numeric read as text when not through JSON
type Num = number | string | null | undefined;

// What the metrics read of the local row of node_overview.
export interface LocalNodeFacts {
  health: string;
  init_state: string;
  method: string | null;
  overall_percent: Num;
  rows_per_second: Num;
  eta_seconds: Num;
}

export interface Observation {
  node: string;
  rows: readonly HealthRowFacts[];
  local?: LocalNodeFacts;
  observedAt: Date;
}

// Every value of the enum-like gauges gets a series (1 for the current,
// 0 for the others): an alert compares one series, and a state the agent
// has not seen yet still exists.
const healthValues = ['healthy', 'degraded', 'unreachable', 'offline', 'unknown'];
const initStates = ['uninitialized', 'preparing', 'copying', 'catching_up', 'synchronized', 'diverged', 'failed', 'reinitializing'];
const walStatuses = ['reserved', 'extended', 'unreserved', 'lost'];

const num = (v: Num): number | undefined => {
  if (v === null || v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
};

export function agentVersion(): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

export class HealthMetrics {
  readonly registry = new Registry();
  private last?: Observation;

  private readonly agentInfo: Gauge<'node' | 'version'>;
  private readonly nodeHealth: Gauge<'node' | 'health'>;
  private readonly subLagBytes: Gauge<string>;
  private readonly subLagSeconds: Gauge<string>;
  private readonly subLagSecondsAtLeast: Gauge<string>;
  private readonly subEnabled: Gauge<string>;
  private readonly subWorker: Gauge<string>;
  private readonly subApplyErrors: Counter<string>;
  private readonly subSyncErrors: Counter<string>;
  private readonly subConflicts: Counter<string>;
  private readonly degraded: Gauge<'node' | 'kind' | 'name'>;
  private readonly slotRetained: Gauge<string>;
  private readonly slotActive: Gauge<string>;
  private readonly slotPrepared: Gauge<string>;
  private readonly slotSafeWal: Gauge<string>;
  private readonly slotWalStatus: Gauge<string>;
  private readonly initState: Gauge<'node' | 'state'>;
  private readonly initPercent: Gauge<'node' | 'method'>;
  private readonly initRate: Gauge<'node' | 'method'>;
  private readonly initEta: Gauge<'node' | 'method'>;
  private readonly observedAt: Gauge<'node'>;

  constructor(private readonly version = agentVersion()) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const sub = ['node', 'subscription', 'source_node'];
    const slot = ['node', 'slot', 'peer_node'];
    const gauge = <L extends string>(name: string, help: string, labelNames: L[]) => new Gauge<L>({ name: `steep_repl_${name}`, help, labelNames, registers });
    const counter = (name: string, help: string, labelNames: string[]) => new Counter({ name: `steep_repl_${name}`, help, labelNames, registers });
    gauge('agent_up', 'always 1 while the agent serves its metrics', []).set(1);
    this.agentInfo = gauge('agent_info', 'always 1: the local node and the steep-repl version of the agent', ['node', 'version']);
    this.nodeHealth = gauge('node_health', "the local node's health in node_overview: 1 for the current value, 0 for the others", ['node', 'health']);
    this.subLagBytes = gauge('subscription_lag_bytes', "WAL the source wrote that its slot for the subscription has not confirmed; absent while the source cannot be asked", sub);
    this.subLagSeconds = gauge('subscription_lag_seconds', 'how long ago the source was at the position its slot confirmed (0 when caught up); absent while unknown', sub);
    this.subLagSecondsAtLeast = gauge(
      'subscription_lag_seconds_at_least',
      "1 when subscription_lag_seconds is a lower bound: the watch's oldest sample of the source was already past the confirmed position",
      sub,
    );
    this.subEnabled = gauge('subscription_enabled', '1 when the subscription is enabled', sub);
    this.subWorker = gauge('subscription_worker_running', '1 when the subscription has an apply worker', sub);
    this.subApplyErrors = counter('subscription_apply_errors_total', "apply errors of the subscription (pg_stat_subscription_stats.apply_error_count)", sub);
    this.subSyncErrors = counter('subscription_sync_errors_total', "table sync errors of the subscription (pg_stat_subscription_stats.sync_error_count)", sub);
    this.subConflicts = counter('subscription_conflicts_total', "conflicts by type (pg_stat_subscription_stats.confl_*, PostgreSQL 18 and later)", [...sub, 'type']);
    // the age at the scrape, not at the round: a stalled watch shows too
    const last = () => this.last;
    new Gauge({
      name: 'steep_repl_subscription_last_message_age_seconds',
      help: 'seconds since the apply worker last received a message from the source (at the scrape)',
      labelNames: sub,
      registers,
      collect() {
        this.reset();
        const o = last();
        for (const r of o?.rows ?? []) {
          if (r.kind !== 'subscription' || !r.last_msg_receipt_time) continue;
          this.set(subLabels(r, o!.node), Math.max(0, (Date.now() - new Date(r.last_msg_receipt_time).getTime()) / 1000));
        }
      },
    });
    this.degraded = gauge('replication_degraded', '1 when the subscription or slot has a problem (replication_health.status degraded)', ['node', 'kind', 'name']);
    this.slotRetained = gauge('slot_retained_bytes', 'WAL the slot keeps on this server (current position minus restart_lsn)', slot);
    this.slotActive = gauge('slot_active', '1 when a walsender uses the slot', slot);
    this.slotPrepared = gauge('slot_prepared', '1 for a slot prepared for a later init (not in use by design)', slot);
    this.slotSafeWal = gauge('slot_safe_wal_bytes', 'WAL that can still be written before the slot loses what it needs (safe_wal_size; absent without max_slot_wal_keep_size)', slot);
    this.slotWalStatus = gauge('slot_wal_status', "the slot's wal_status: 1 for the current value, 0 for the others", [...slot, 'status']);
    this.initState = gauge('init_state', "the local node's init_state: 1 for the current value, 0 for the others", ['node', 'state']);
    this.initPercent = gauge('init_percent', "percent done of the local node's init (or reinit, merge) progress row", ['node', 'method']);
    this.initRate = gauge('init_rows_per_second', "rows per second of the local node's init copy", ['node', 'method']);
    this.initEta = gauge('init_eta_seconds', "seconds the local node's init expects to need still", ['node', 'method']);
    this.observedAt = gauge('observation_timestamp_seconds', 'when the agent last observed replication (unix time)', ['node']);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  // The series of one round, replacing the last round's.
  update(o: Observation): void {
    this.last = o;
    for (const m of [
      this.agentInfo, this.nodeHealth, this.subLagBytes, this.subLagSeconds, this.subLagSecondsAtLeast, this.subEnabled, this.subWorker, this.degraded,
      this.slotRetained, this.slotActive, this.slotPrepared, this.slotSafeWal, this.slotWalStatus,
      this.initState, this.initPercent, this.initRate, this.initEta, this.observedAt,
    ]) m.reset();
    for (const m of [this.subApplyErrors, this.subSyncErrors, this.subConflicts]) m.reset();
    const node = o.node;
    this.agentInfo.set({ node, version: this.version }, 1);
    this.observedAt.set({ node }, o.observedAt.getTime() / 1000);
    for (const r of o.rows) {
      this.degraded.set({ node, kind: r.kind, name: r.name }, r.status === 'degraded' ? 1 : 0);
      if (r.kind === 'subscription') {
        const labels = subLabels(r, node);
        setIf(this.subLagBytes, labels, num(r.lag_bytes));
        setIf(this.subLagSeconds, labels, num(r.lag_seconds));
        if (num(r.lag_seconds) !== undefined) this.subLagSecondsAtLeast.set(labels, r.lag_seconds_at_least ? 1 : 0);
        this.subEnabled.set(labels, r.enabled ? 1 : 0);
        this.subWorker.set(labels, r.worker_pid ? 1 : 0);
        // counters mirrored from the server: the server's count is the value
        this.subApplyErrors.inc(labels, num(r.apply_error_count) ?? 0);
        this.subSyncErrors.inc(labels, num(r.sync_error_count) ?? 0);
        for (const [type, count] of Object.entries(r.conflicts ?? {})) this.subConflicts.inc({ ...labels, type }, num(count) ?? 0);
      } else {
        const labels = { node, slot: r.name, peer_node: r.peer_node_id ?? '' };
        setIf(this.slotRetained, labels, num(r.retained_bytes));
        this.slotActive.set(labels, r.slot_active ? 1 : 0);
        this.slotPrepared.set(labels, r.prepared ? 1 : 0);
        setIf(this.slotSafeWal, labels, num(r.safe_wal_size));
        if (r.wal_status) for (const status of withValue(walStatuses, r.wal_status)) this.slotWalStatus.set({ ...labels, status }, status === r.wal_status ? 1 : 0);
      }
    }
    const local = o.local;
    if (local) {
      for (const health of withValue(healthValues, local.health)) this.nodeHealth.set({ node, health }, health === local.health ? 1 : 0);
      for (const state of withValue(initStates, local.init_state)) this.initState.set({ node, state }, state === local.init_state ? 1 : 0);
      if (local.method) {
        const labels = { node, method: local.method };
        setIf(this.initPercent, labels, num(local.overall_percent));
        setIf(this.initRate, labels, num(local.rows_per_second));
        setIf(this.initEta, labels, num(local.eta_seconds));
      }
    }
  }
}

const subLabels = (r: HealthRowFacts, node: string) => ({ node, subscription: r.name, source_node: r.peer_node_id ?? '' });

function setIf<L extends string>(g: Gauge<L>, labels: Partial<Record<L, string>>, value: number | undefined): void {
  if (value !== undefined) g.set(labels, value);
}

// The known values, and the current one should it be new.
const withValue = (known: string[], current: string): string[] => (known.includes(current) ? known : [...known, current]);
