// The nodes view: one row per registered node, as last read from the nodes.
import { ago, bytes, bytesPerSecond, eta, initPercentAndEta, num, percent, tablesDiffer } from '../lib/format';
import { nodeLagBytes, replicationRows } from '../lib/health-format';
import { quoteIdent } from '../lib/identifiers';
import { mergeUnderWay } from '../lib/sql/listNodes';
import type { NodeView } from './cluster-watch';
import { stringWidth } from 'terminal-kit';
import { Area, Attr, fit, Painter, stateAttr, wrap, wrapAtMost } from './draw';

interface Column {
  title: string;
  width: number;
  cell(node: NodeView, now: Date): [string, Attr?];
}

// A manual init in preparing waits for the DBA's backup and node complete.
const waitsForBackup = (node: NodeView): boolean => node.state?.method === 'manual' && node.state.init_state === 'preparing';

function manualWaitText(node: NodeView): string {
  const backup = node.methodState?.backup;
  return `manual: waiting for ${backup === 'pg_dump' ? 'pg_dump' : backup === 'pg_basebackup' ? 'the base backup' : 'the backup'}, then node complete`;
}

// The INIT column's width: a merge's cell shortens the peer's name to keep its percent.
const initWidth = 16;

// "merge ↔ node_a 42%", the peer cut to fit the column.
export function mergeCell(peer: string, overallPercent: Parameters<typeof percent>[0], width = initWidth): string {
  const tail = ` ${percent(overallPercent ?? 0)}`;
  const head = 'merge ↔ ';
  const room = width - head.length - tail.length;
  return `${head}${stringWidth(peer) <= room ? peer : fit(peer, room)}${tail}`;
}

// The peer of a merge under way on the node, else undefined.
const mergePeer = (node: NodeView): string | undefined => mergeUnderWay(node.state)?.peer_node_id;

// peerShown: the SOURCE column says "↔ peer" already, so a merge's cell is "merge 42%".
export function initText(node: NodeView, peerShown = false): string {
  const s = node.state;
  if (!s) return '-';
  if (waitsForBackup(node)) return 'manual: waiting';
  const peer = mergePeer(node);
  if (peer !== undefined) return peerShown ? `merge ${percent(s.overall_percent ?? 0)}` : mergeCell(peer, s.overall_percent);
  if (s.init_in_progress) return initPercentAndEta(s.overall_percent, s.eta_seconds);
  // a verify running on the node: its percent
  if (s.verify_running && s.last_verify) return `verify ${percent(s.last_verify.percent)}`;
  // a source writing a snapshot: the newest one's progress
  const snapshot = node.generating?.[0];
  if (snapshot) return `generating ${percent(snapshot.overall_percent)}`;
  if (s.init_state === 'diverged' && s.diverged_tables) return tablesDiffer(s.diverged_tables);
  if (s.init_state === 'synchronized') return 'done';
  if (s.init_state === 'failed') return 'failed';
  return '-';
}

// The agent's watch of the node's subscriptions (the largest lag, measured
// on their sources), else live from the source's slot when it can be read,
// else as the init reports it while one runs; else none.
export function nodeLag(node: NodeView): number | undefined {
  return nodeLagBytes(node.state, node.slotLag);
}

// Yellow while a subscription of the node lags past its threshold.
function lagAttr(node: NodeView): Attr {
  const lagging = replicationRows(node.state).some((r) => r.problems?.some((p) => p === 'lag_bytes' || p === 'lag_seconds'));
  return lagging ? { color: 'yellow', bold: true } : {};
}

// healthy green, degraded yellow, unreachable and offline red (a node
// before 0.9.0 says 'no agent' / 'agent silent' for offline).
const healthColors: Record<string, Attr> = {
  healthy: { color: 'green' },
  degraded: { color: 'yellow', bold: true },
  unreachable: { color: 'red', bold: true },
  offline: { color: 'red', bold: true },
  'no agent': { color: 'red', bold: true },
  'agent silent': { color: 'red', bold: true },
};

export function healthOf(node: NodeView): [string, Attr] {
  if (node.reachable === false) return ['unreachable', healthColors.unreachable];
  if (node.reachable === undefined) return ['connecting', { color: 'yellow' }];
  if (!node.state) return [node.problem?.includes('not installed') ? 'no steep_repl' : 'unknown', { color: 'yellow' }];
  const health = node.state.health;
  return [health, healthColors[health] ?? { color: 'yellow' }];
}

// "⚠ node_b degraded: apply worker failing: …" for a node that is not
// healthy as its own database sees it, or that does not answer.
export function healthWarning(node: NodeView): [string, Attr] | undefined {
  const id = quoteIdent(node.id);
  if (node.reachable === false) return [`⚠ ${id} unreachable: ${node.problem ?? 'no answer'}; retrying`, healthColors.unreachable];
  const s = node.state;
  if (!s || s.health === 'healthy') return undefined;
  return [`⚠ ${id} ${s.health}${s.health_reason ? `: ${s.health_reason}` : ''}`, healthOf(node)[1]];
}

function stateOf(node: NodeView): string {
  return node.state?.init_state ?? node.registry.init_state;
}

function columnsFor(width: number): Column[] {
  const fixed: Column[] = [
    { title: 'STATE', width: 14, cell: (n) => [stateOf(n).toUpperCase(), stateAttr(stateOf(n))] },
    { title: 'LAG', width: 8, cell: (n) => [bytes(nodeLag(n)), lagAttr(n)] },
    { title: 'INIT', width: initWidth, cell: (n) => [initText(n, width >= 100)] },
    { title: 'HEALTH', width: 13, cell: (n) => healthOf(n) },
    { title: 'LAST SEEN', width: 9, cell: (n, now) => [ago(n.state?.last_seen ?? n.registry.last_seen, now)] },
  ];
  if (width >= 100) {
    // a merging node's peer both sends and receives
    const source = (n: NodeView) => (mergePeer(n) !== undefined ? `↔ ${mergePeer(n)}` : (n.state?.init_source_node ?? '-'));
    fixed.splice(1, 0, { title: 'SOURCE', width: 12, cell: (n) => [source(n)] });
  }
  const used = fixed.reduce((sum, c) => sum + c.width + 1, 0);
  const address: Column = {
    title: 'ADDRESS',
    width: 24,
    cell: (n) => [`${n.registry.host}:${n.registry.port}/${n.registry.dbname}`],
  };
  const withAddress = width >= 120;
  const nodeWidth = Math.max(8, width - used - (withAddress ? address.width + 1 : 0) - 2);
  const node: Column = {
    title: 'NODE',
    width: nodeWidth,
    cell: (n) => [n.registry.is_local ? `${n.id} *` : n.id, { bold: true }],
  };
  return withAddress ? [node, ...fixed, address] : [node, ...fixed];
}

export function renderNodesView(p: Painter, area: Area, nodes: NodeView[], selectedId: string | undefined, now: Date): void {
  const columns = columnsFor(area.width);
  let x = area.x + 1;
  for (const column of columns) {
    p.put(x, area.y, fit(column.title, column.width), { bold: true, underline: true });
    x += column.width + 1;
  }
  if (nodes.length === 0) {
    p.put(area.x + 1, area.y + 2, 'no nodes registered (steep-repl node register <id> ...)', { color: 'yellow' });
    return;
  }
  const visible = Math.max(1, area.height - 4);
  const selected = Math.max(0, nodes.findIndex((n) => n.id === selectedId));
  const first = Math.min(Math.max(0, selected - visible + 1), Math.max(0, nodes.length - visible));
  nodes.slice(first, first + visible).forEach((node, i) => {
    const y = area.y + 1 + i;
    const isSelected = node.id === selectedId;
    if (isSelected) p.put(area.x, y, ' '.repeat(area.width), { inverse: true });
    p.put(area.x, y, isSelected ? '›' : ' ', isSelected ? { inverse: true, bold: true } : {});
    let cx = area.x + 1;
    for (const column of columns) {
      const [text, attr = {}] = column.cell(node, now);
      p.put(cx, y, fit(text, column.width), isSelected ? { ...attr, inverse: true } : attr);
      cx += column.width + 1;
    }
  });
  const current = nodes[selected];
  let y = area.y + 2 + Math.min(visible, nodes.length);
  y += renderHealthWarnings(p, { ...area, y, height: area.y + area.height - y }, nodes, current);
  if (current) renderSelectedSummary(p, { ...area, y, height: area.y + area.height - y }, current);
}

// A line per node that is not healthy, cut to the width; the selected
// node's wraps (up to 3 lines), to be read in full. Leaves two lines for the
// selected node's summary. Returns the lines used (and one blank after).
function renderHealthWarnings(p: Painter, area: Area, nodes: NodeView[], current: NodeView | undefined): number {
  const width = Math.max(10, area.width - 2);
  const warned = nodes.flatMap((node) => {
    const w = healthWarning(node);
    if (!w) return [];
    const texts = node === current ? wrapAtMost(w[0], width - 2, 3).map((t, i) => (i ? `  ${t}` : t)) : [w[0]];
    return [{ texts, attr: w[1] }];
  });
  if (!warned.length) return 0;
  const room = Math.max(1, area.height - 3);
  const lines: Array<[string, Attr]> = [];
  for (const [i, w] of warned.entries()) {
    const left = warned.length - i;
    if (lines.length + w.texts.length > room - (left > 1 ? 1 : 0)) {
      lines.push([`⚠ ${left} more node${left === 1 ? '' : 's'} not healthy`, { color: 'yellow' }]);
      break;
    }
    for (const text of w.texts) lines.push([fit(text, width).trimEnd(), w.attr]);
  }
  lines.slice(0, room).forEach(([text, attr], i) => p.put(area.x + 1, area.y + i, text, attr));
  return Math.min(room, lines.length) + 1;
}

// A line or two under the table about the selected node: what it does or what is wrong.
function renderSelectedSummary(p: Painter, area: Area, node: NodeView): void {
  const s = node.state;
  const lines: Array<[string, Attr]> = [];
  // an unreachable node's problem is its health warning above
  if (node.reachable !== false && node.problem) lines.push([`${node.id}: ${node.problem}`, { color: 'yellow' }]);
  if (s) {
    const tables = s.diverged_tables ?? 0;
    const parts = [`${node.id}: ${s.init_state}${s.init_state === 'diverged' && tables ? ` (${tables} table${tables === 1 ? '' : 's'})` : ''}`];
    const m = mergeUnderWay(s);
    // a merging node's peer is no source: both send and receive
    if (m) parts.push(`merge ${m.merge_id} ↔ ${m.peer_node_id}${m.strategy ? ` (${m.strategy})` : ''}${m.step ? ` · step ${m.step}` : ''}`);
    else if (s.init_source_node) parts.push(`source ${s.init_source_node}`);
    if (waitsForBackup(node)) parts.push(manualWaitText(node));
    else if (s.phase && s.init_in_progress && !m) parts.push(`phase ${s.phase}`);
    if (s.tables_total) parts.push(`tables ${s.tables_done ?? 0}/${s.tables_total}`);
    lines.push([parts.join(' · '), {}]);
    const divergence = s.divergence ?? [];
    if (divergence.length) {
      // a merged node replicates both ways: no reinit (start_reinit refuses it)
      const mend = s.method === 'merge' ? 'merged both ways: mend the rows on one node, then verify' : 'R re-copies them';
      lines.push([`differ: ${divergence.map((d) => d.label).join(', ')} · ${mend}`, { color: 'magenta' }]);
    }
    const v = s.last_verify;
    if (v && s.verify_running) {
      lines.push([`verify ${v.verify_id}: ${v.phase ?? v.state} ${percent(v.percent)} · ${v.tables_done}/${v.tables_total} tables${v.current_table ? ` · ${v.current_table}` : ''}`, { color: 'cyan' }]);
    }
    if (s.error) lines.push([`error: ${s.error}`, { color: 'red' }]);
  }
  for (const g of node.generating ?? []) lines.push([generatingText(g), { color: 'cyan' }]);
  // Long reasons wrap instead of being cut.
  const width = Math.max(10, area.width - 2);
  const wrapped = lines.flatMap(([text, attr]) => wrap(text, width).map((part): [string, Attr] => [part, attr]));
  wrapped.slice(0, Math.max(0, area.height)).forEach(([text, attr], i) => p.put(area.x + 1, area.y + i, text, attr));
}


// "generating snapshot snap_… 42% · parts 3/8 · 12.0MB written · 4.0MB/s · ETA 13s"
export function generatingText(g: NonNullable<NodeView['generating']>[number]): string {
  return [
    `generating snapshot ${g.snapshot_id} ${percent(g.overall_percent)}`,
    `parts ${g.parts_done}/${g.parts_total}`,
    `${bytes(g.bytes_written)} written`,
    num(g.bytes_per_second) === undefined ? '' : bytesPerSecond(g.bytes_per_second),
    eta(g.eta_seconds),
  ]
    .filter(Boolean)
    .join(' · ');
}
