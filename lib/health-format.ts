// Replication health for people: the texts node list, node status and the
// live view share (the view imports nothing from cli/). Facts come from
// node_overview.replication, one row per watched subscription or slot;
// sizes and times are lib/format's, identifiers as quote_ident writes them.
import { ago, bytes, duration, num, Numeric } from './format';
import { quoteIdent } from './identifiers';
import type { NodeOverview, ReplicationHealthRow } from './sql/listNodes';

// "degraded — apply worker failing: …", "healthy"
export function healthText(n: Pick<NodeOverview, 'health' | 'health_reason'>): string {
  return n.health_reason ? `${n.health} — ${n.health_reason}` : n.health;
}

// No agent runs for the node: 'offline' from 0.9.0 on, 'no agent' / 'agent
// silent' in an older database.
export function isOffline(n: Pick<NodeOverview, 'health'> | undefined): boolean {
  return n?.health === 'offline' || n?.health === 'no agent' || n?.health === 'agent silent';
}

// Why a node is offline: node_overview's reason, else the same words (a row without one).
export function offlineReason(n: Pick<NodeOverview, 'health_reason' | 'last_seen' | 'node_id'>): string {
  if (n.health_reason) return n.health_reason;
  return n.last_seen
    ? `agent silent since ${new Date(n.last_seen).toISOString()}: is steep-repl agent running?`
    : `no agent has run for this node: start steep-repl agent --db <url of ${quoteIdent(n.node_id)}>`;
}

// A node whose health deserves a line under a table: not healthy, and
// something to say (a peer never probed is 'unknown' with nothing to add).
export function needsAttention(n: Pick<NodeOverview, 'health' | 'health_reason'>): boolean {
  return n.health !== 'healthy' && (n.health !== 'unknown' || !!n.health_reason);
}

// The node's watched subscriptions and slots, as node_overview lists them
// (kind, then name); none on a peer's row or a node older than 0.9.0.
export function replicationRows(n: Pick<NodeOverview, 'replication'> | undefined): ReplicationHealthRow[] {
  return Array.isArray(n?.replication) ? n.replication : [];
}

// "45s", "6m02s": how long since then
const since = (at: string, now: Date): string => duration(Math.max(0, (now.getTime() - new Date(at).getTime()) / 1000));

const peerText = (peer: string | null | undefined): string => (peer ? quoteIdent(peer) : 'an unregistered node');

// "lag 2.1GB (6m02s, growing)", "lag 0B", "lag not measured (cannot reach the source)"
export function lagText(lagBytes: Numeric, lagSeconds: Numeric, trend?: string | null, sourceError?: string | null): string {
  const b = num(lagBytes);
  const s = num(lagSeconds);
  if (b === undefined && s === undefined) return sourceError ? 'lag not measured (cannot reach the source)' : 'lag not measured yet';
  const detail = [s !== undefined && (b === undefined || b > 0) ? duration(s) : '', trend && trend !== 'steady' ? trend : ''].filter(Boolean);
  return `lag ${b === undefined ? '?' : bytes(b)}${detail.length ? ` (${detail.join(', ')})` : ''}`;
}

// The LAG column's bytes: what the front end measured itself just now (the
// live view reads the slot on the source every poll, fresher than the
// watch's last round), else the watch's (the largest over the node's
// subscriptions), else the init's own figure while an init runs (a finished
// init's last figure is no lag of today).
export function nodeLagBytes(
  n: Pick<NodeOverview, 'replication_lag_bytes' | 'lag_bytes' | 'init_in_progress'> | undefined,
  measured?: number,
): number | undefined {
  return measured ?? num(n?.replication_lag_bytes) ?? (n?.init_in_progress ? num(n.lag_bytes) : undefined);
}

// The node's lag: the largest over its subscriptions (node_overview), with
// the trend of the subscription that lags most. undefined without subscriptions.
export function nodeLagText(n: Pick<NodeOverview, 'replication' | 'replication_lag_bytes' | 'replication_lag_seconds'>): string | undefined {
  const subs = replicationRows(n).filter((r) => r.kind === 'subscription');
  if (!subs.length && num(n.replication_lag_bytes) === undefined) return undefined;
  const worst = [...subs].sort((a, b) => (num(b.lag_bytes) ?? -1) - (num(a.lag_bytes) ?? -1))[0];
  const unmeasured = subs.find((r) => r.source_error)?.source_error;
  return lagText(n.replication_lag_bytes, n.replication_lag_seconds, worst?.lag_trend, unmeasured);
}

// "3 insert_exists (1 recent), 1 update_missing"; nonzero counters only.
function conflictsText(conflicts: Record<string, number>, recent: Record<string, number> | null | undefined): string {
  const parts = Object.entries(conflicts)
    .filter(([, n]) => Number(n) > 0)
    .map(([type, n]) => `${n} ${type}${Number(recent?.[type] ?? 0) > 0 ? ` (${recent![type]} recent)` : ''}`);
  return parts.length ? `conflicts ${parts.join(', ')}` : 'conflicts 0';
}

const errorsText = (what: string, total: Numeric, recent: Numeric): string =>
  `${what} errors ${num(total) ?? '-'}${(num(recent) ?? 0) > 0 ? ` (${num(recent)} recent)` : ''}`;

// "sub" from node_a, "slot" for node_b
export function replicationObjectText(r: ReplicationHealthRow): string {
  return r.kind === 'subscription' ? `${quoteIdent(r.name)} from ${peerText(r.peer_node_id)}` : `${quoteIdent(r.name)} for ${peerText(r.peer_node_id)}`;
}

// A subscription's facts, in the order a DBA checks them: enabled, worker,
// lag, last message, errors, conflicts (PostgreSQL 18 and later).
export function subscriptionFactsText(r: ReplicationHealthRow, now = new Date()): string[] {
  const facts = [
    r.enabled ? 'enabled' : 'disabled',
    r.worker_pid ? `worker ${r.worker_pid}` : `no worker${r.worker_missing_since ? ` for ${since(r.worker_missing_since, now)}` : r.worker_seen_at ? ` (last seen ${ago(r.worker_seen_at, now)})` : ''}`,
    lagText(r.lag_bytes, r.lag_seconds, r.lag_trend, r.source_error),
    // no worker, no pg_stat_subscription row: nothing to say about messages
    ...(r.worker_pid || r.last_msg_receipt_time ? [`last message ${ago(r.last_msg_receipt_time, now)}`] : []),
    errorsText('apply', r.apply_error_count, r.apply_errors_recent),
    errorsText('sync', r.sync_error_count, r.sync_errors_recent),
  ];
  if (r.conflicts && typeof r.conflicts === 'object') facts.push(conflictsText(r.conflicts, r.conflicts_recent));
  return facts;
}

// A slot's facts: in use, wal_status, WAL retained, safe_wal_size (only
// with max_slot_wal_keep_size set).
export function slotFactsText(r: ReplicationHealthRow, now = new Date()): string[] {
  const inactiveFor = r.inactive_seen_since ? ` for ${since(r.inactive_seen_since, now)}` : '';
  const facts = [
    ...(r.prepared ? ['prepared'] : []),
    r.slot_active ? `active${r.active_pid ? ` (pid ${r.active_pid})` : ''}` : `inactive${inactiveFor}`,
    `wal_status ${r.wal_status ?? '-'}`,
    `retains ${bytes(r.retained_bytes)}`,
  ];
  if (num(r.safe_wal_size) !== undefined) facts.push(`safe_wal_size ${bytes(r.safe_wal_size)}`);
  return facts;
}

export function replicationFactsText(r: ReplicationHealthRow, now = new Date()): string[] {
  return r.kind === 'subscription' ? subscriptionFactsText(r, now) : slotFactsText(r, now);
}
