import { ago, count, initPercentAndEta, percent, shellWord, tablesDiffer } from '../lib/format';
import { mergeUnderWay, MergeSummary, NodeOverview, VerifySummary } from '../lib/sql/listNodes';
import { nodeLagText, replicationFactsText, replicationObjectText, replicationRows } from '../lib/health-format';
import { quoteIdent } from '../lib/identifiers';
import type { NodeHealthView } from './peer-health';
import { reinitScopeText } from './reinit-follow';

// "67% ETA 14m02s from node_a", "merge ↔ node_a 42%" while the node merges
// with node_a, or "-" when no initialization runs.
export function formatInit(n: Pick<NodeOverview, 'init_in_progress' | 'overall_percent' | 'eta_seconds' | 'init_source_node' | 'merge' | 'method'>): string {
  if (!n.init_in_progress) return '-';
  const merge = mergeUnderWay(n);
  if (merge) return `merge ↔ ${merge.peer_node_id} ${percent(n.overall_percent ?? 0)}`;
  return `${initPercentAndEta(n.overall_percent, n.eta_seconds)}${n.init_source_node ? ` from ${n.init_source_node}` : ''}`;
}

// "diverged (2 tables)": the state with what a verify found (node list, the live view).
export function stateText(n: Pick<NodeOverview, 'init_state' | 'diverged_tables'>): string {
  const tables = n.diverged_tables ?? 0;
  return n.init_state === 'diverged' && tables ? `diverged (${tables} table${tables === 1 ? '' : 's'})` : n.init_state;
}

// "verify 42%" while a verify runs, else the init's cell.
export function formatInitOrVerify(n: NodeOverview): string {
  if (n.verify_running && n.last_verify && !n.init_in_progress) return `verify ${percent(n.last_verify.percent)}`;
  return formatInit(n);
}

// "12 differs against node_a 3m ago: 2 of 5 tables differ", or while it runs
// "13 running: hashing 42% 2/5 tables, on public.orders".
export function verifyText(v: VerifySummary, now = new Date()): string {
  const head = `${v.verify_id}${v.reason === 'reinit' ? ' (reinit)' : ''} ${v.state}${v.peer_node_id ? ` against ${v.peer_node_id}` : ''}`;
  if (v.state === 'queued') return `${head}, waiting for the agent since ${ago(v.requested_at, now)}`;
  if (v.state === 'running') {
    return `${head}: ${v.phase ?? 'starting'} ${percent(v.percent)} ${v.tables_done}/${v.tables_total} tables${v.current_table ? `, on ${v.current_table}` : ''}`;
  }
  const tail =
    v.state === 'failed'
      ? `: ${v.error ?? 'no reason recorded'}`
      : v.state === 'differs'
        ? `: ${v.tables_differing} of ${v.tables_total} tables differ`
        : v.state === 'equal'
          ? `: ${v.tables_total} table${v.tables_total === 1 ? '' : 's'}, ${count(v.rows_compared)} rows`
          : '';
  return `${head} ${ago(v.finished_at ?? v.requested_at, now)}${tail}`;
}

// node status's lines about verify and reinit: [label, value].
export function divergenceLines(n: NodeOverview, now = new Date()): Array<[string, string]> {
  const lines: Array<[string, string]> = [];
  const divergence = n.divergence ?? [];
  if (divergence.length) {
    const tables = divergence.map((d) => d.label).join(',');
    lines.push([
      'diverged',
      n.method === 'merge'
        ? `${tablesDiffer(divergence.length)}; ${mergedAdvice(n.node_id)}`
        : `${tablesDiffer(divergence.length)}; re-copy: steep-repl node reinit ${shellWord(n.node_id)} --tables ${shellWord(tables)}`,
    ]);
    for (const d of divergence) {
      lines.push([
        '  table',
        `${d.label}: missing ${d.rows_missing}, extra ${d.rows_extra}, different ${d.rows_different} (verify ${d.verify_id ?? '?'}${d.peer_node_id ? ` against ${d.peer_node_id}` : ''}, ${ago(d.found_at, now)})`,
      ]);
    }
  }
  if (n.last_verify) lines.push(['last verify', verifyText(n.last_verify, now)]);
  if (n.reinit && n.init_state === 'reinitializing') {
    lines.push(['reinit', `${reinitScopeText(n.reinit)}: ${n.phase ?? '-'} ${percent(n.overall_percent ?? 0)}${n.reinit.step ? ` (step ${n.reinit.step})` : ''}`]);
  } else if (n.reinit?.outcome) {
    const at = typeof n.reinit.finished_at === 'string' ? ` ${ago(n.reinit.finished_at, now)}` : '';
    lines.push(['last reinit', `${reinitScopeText(n.reinit)}: ${n.reinit.outcome}${at}`]);
  }
  return lines;
}

// What mends a merged node that differs: a reinit would re-copy one side of a two-way pair (start_reinit refuses it).
export const mergedAdvice = (nodeId: string): string =>
  `the node was merged and replicates both ways: mend these rows on one node and verify again (steep-repl node verify ${shellWord(nodeId)}), or detach both nodes and merge them again`;

// "12 merged with node_b 3m ago: 120 rows written on node_a, 30 on node_b",
// "13 resolving: 12 conflicts recorded, 3 unresolved", or while it runs
// "14 running with node_b: comparing 42% 2/5 tables".
export function mergeText(m: MergeSummary, now = new Date()): string {
  const kind = m.mode === 'analyze' ? 'analysis' : m.mode === 'dry_run' ? 'dry run' : m.mode === 'record' ? 'manual record' : 'merge';
  const head = `${m.merge_id} (${kind}${m.strategy ? ` ${m.strategy}` : ''}) ${m.state} with ${m.peer_node_id}`;
  if (m.state === 'queued') return `${head}, waiting for the agent of ${m.node_a} since ${ago(m.requested_at, now)}`;
  if (m.state === 'running') return `${head}: ${m.phase ?? 'starting'} ${percent(m.percent)} ${m.tables_done}/${m.tables_total} tables`;
  const at = ` ${ago(m.finished_at ?? m.requested_at, now)}`;
  const found = `${count(m.rows_only_a)} only on ${m.node_a}, ${count(m.rows_only_b)} only on ${m.node_b}, ${count(m.rows_conflicting)} conflicting`;
  switch (m.state) {
    case 'analyzed':
      return `${head}${at}: ${found}${m.mode === 'dry_run' ? `; would write ${count(m.rows_to_a)} rows on ${m.node_a}, ${count(m.rows_to_b)} on ${m.node_b}` : ''}`;
    case 'resolving':
      return `${head}${at}: ${count(m.rows_conflicting)} conflicts recorded, ${count(m.conflicts_unresolved)} unresolved; then steep-repl node merge ${shellWord(m.node_a)} ${shellWord(m.node_b)} --apply`;
    case 'merged':
      return `${head}${at}: ${count(m.rows_to_a)} rows written on ${m.node_a}, ${count(m.rows_to_b)} on ${m.node_b}`;
    case 'failed':
      return `${head}${at}: ${m.error ?? 'no reason recorded'}`;
    default:
      return `${head}${at}`;
  }
}

// node status's lines about merges: the one under way on this node (its
// share: peer, role, step) and the newest run (on node A's database).
export function mergeLines(n: NodeOverview, now = new Date()): Array<[string, string]> {
  const lines: Array<[string, string]> = [];
  const m = mergeUnderWay(n);
  if (m) {
    const role = m.role === 'a' ? `node A, coordinating` : `node B; ${m.coordinator} coordinates`;
    lines.push(['merge', `${m.merge_id} with ${m.peer_node_id} (${role}${m.strategy ? `, ${m.strategy}` : ''}): ${n.phase ?? '-'} ${percent(n.overall_percent ?? 0)}${m.step ? ` (step ${m.step})` : ''}`]);
    if (m.error) lines.push(['  error', m.error]);
  }
  const ended = n.method === 'merge' && !m ? n.merge : undefined;
  // the run of the merge under way is its 'merge' line already
  if (n.last_merge && !(m && n.last_merge.merge_id === m.merge_id && n.last_merge.node_a === m.coordinator)) {
    lines.push(['last merge', mergeText(n.last_merge, now)]);
  } else if (!n.last_merge && ended?.outcome) {
    // B's database has no run, only how its share ended
    const peer = ended.peer_node_id ?? n.init_source_node ?? '?';
    lines.push(['last merge', `${ended.merge_id} with ${peer}: ${ended.outcome}${typeof ended.finished_at === 'string' ? ` ${ago(ended.finished_at, now)}` : ''} (the run is in the database of ${ended.coordinator})`]);
  }
  return lines;
}

// node status's lines about replication: a summary of what the agent's
// watch saw and when, the node's lag, one line per subscription and slot.
// Only the node's own database watches it: a peer's row read there has them
// (peer-health), one that could not be read gets a pointer there.
export function replicationStatusLines(n: NodeOverview & Partial<Pick<NodeHealthView, 'health_from'>>, now = new Date()): Array<[string, string]> {
  // a node older than 0.9.0 has no watch
  if (n.replication === undefined) return [];
  if (!n.is_local && (n.health_from !== 'own database' || n.health === 'unreachable')) {
    const id = quoteIdent(n.node_id);
    return [['replication', `watched in the database of ${id}: steep-repl node status --db <url of ${id}>`]];
  }
  const rows = replicationRows(n);
  const subs = rows.filter((r) => r.kind === 'subscription').length;
  const slots = rows.length - subs;
  const what = rows.length
    ? [subs ? `${subs} subscription${subs === 1 ? '' : 's'}` : '', slots ? `${slots} slot${slots === 1 ? '' : 's'}` : ''].filter(Boolean).join(', ')
    : 'no steep-repl subscription or slot';
  const lines: Array<[string, string]> = [
    ['replication', `${what}${n.replication_observed_at ? `, observed ${ago(n.replication_observed_at, now)}` : ''}`],
  ];
  const lag = nodeLagText(n);
  if (lag) lines.push(['lag', lag.replace(/^lag /, '')]);
  for (const r of rows) {
    // a healthy prepared slot has its own 'prepared slot' line
    if (r.kind === 'slot' && r.prepared && r.status === 'healthy') continue;
    lines.push([r.kind, `${replicationObjectText(r)}${r.status === 'healthy' ? '' : ` (${r.status})`}: ${replicationFactsText(r, now).join(' · ')}`]);
  }
  return lines;
}
