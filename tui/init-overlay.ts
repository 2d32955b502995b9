// The detail overlay of one node's initialization, as last read from it.
import { stringWidth } from 'terminal-kit';
import { ago, bytes, bytesPerSecond, count, duration, num, percent, rowsPerSecond, tablesDiffer } from '../lib/format';
import { nodeLagText, replicationFactsText, replicationObjectText, replicationRows } from '../lib/health-format';
import { tableLabel } from '../lib/identifiers';
import type { ReinitState } from '../lib/sql/listNodes';
import type { ActivePart, TableProgress } from '../lib/sql/getInitStatus';
import type { NodeView } from './cluster-watch';
import { Area, Attr, bar, fit, fitRight, Painter, stateAttr, wrap, wrapAtMost } from './draw';

// What a method calls its phases where the common names say less: a
// two-phase init verifies the snapshot's files while preparing and loads
// them while copying.
const phaseNames: Record<string, Record<string, string>> = {
  'two-phase': { preparing: 'verify', schema_sync: 'schema', copying: 'loading', catching_up: 'catching up', finalizing: 'finalizing' },
};

// phases: the method's own, in order (init_methods.phases).
function phaseMarks(phase: string, phases: string[], method: string): Array<[string, Attr]> {
  const named = (p: string) => phaseNames[method]?.[p] ?? p;
  // The row keeps no record of the phase a failure or a cancel interrupted.
  if (phase === 'failed') return [['✗ failed (the error is below)', { color: 'red', bold: true }]];
  if (phase === 'cancelling') return [['▶ cancelling: removing what this initialization created', { color: 'yellow', bold: true }]];
  const at = phase === 'done' ? phases.length : phases.indexOf(phase);
  return phases.map((name, i): [string, Attr] => {
    if (i < at) return [`✓ ${named(name)}`, { color: 'green' }];
    if (i === at) return [`▶ ${named(name)}`, { color: 'cyan', bold: true }];
    return [`· ${named(name)}`, { color: 'white' }];
  });
}

const tableName = (t: TableProgress) => t.label;
// The planned table and, when another, the relation read (a leaf partition).
const partName = (a: ActivePart) => (a.leaf && a.leaf !== a.label ? `${a.label} (${a.leaf})` : a.label);
// Most recently finished first.
const byCompletion = (a: TableProgress, b: TableProgress) => String(b.completed_at ?? '').localeCompare(String(a.completed_at ?? ''));

const reinitScope = (r: ReinitState): string => {
  if (r.scope === 'full') return 'every table';
  const tables = (r.tables ?? []).map(tableLabel);
  return r.scope === 'schema' ? `schema ${r.schema ?? ''}${tables.length ? `: ${tables.join(', ')}` : ''}` : tables.join(', ');
};

// The node's verify and what it found: a running verify's bar, the tables
// a verify found different (diverged), or how the last verify ended.
export function verifyLines(node: NodeView, inner: number, now = new Date()): Array<Array<[string, Attr?]>> {
  const s = node.state;
  const out: Array<Array<[string, Attr?]>> = [];
  if (!s) return out;
  const v = s.last_verify;
  if (v && s.verify_running) {
    const head = `Verify ${v.verify_id} `;
    const tail = ` ${fitRight(percent(v.percent), 4)}  ${v.phase ?? v.state} ${v.tables_done}/${v.tables_total} tables${v.current_table ? `  ${v.current_table}` : ''}`;
    const width = Math.max(10, Math.min(40, inner - head.length - tail.length - 2));
    out.push([[head, { bold: true }], ['['], [bar(width, num(v.percent) ?? 0), { color: 'magenta' }], [']'], [tail]]);
  }
  const divergence = s.divergence ?? [];
  if (divergence.length) {
    const first = divergence[0];
    out.push([
      ['Diverged ', { bold: true, color: 'magenta' }],
      [tablesDiffer(divergence.length), { color: 'magenta' }],
      [` (verify ${first.verify_id ?? '?'}${first.peer_node_id ? ` against ${first.peer_node_id}` : ''}, ${ago(first.found_at, now)}) · ${s.method === 'merge' ? 'mend them on one node, then verify' : 'R re-copies them'}`],
    ]);
    for (const d of divergence.slice(0, 6)) {
      out.push([['  ✗ ', { color: 'magenta' }], [d.label, { bold: true }], [`  missing ${d.rows_missing} · extra ${d.rows_extra} · different ${d.rows_different}`]]);
    }
    if (divergence.length > 6) out.push([[`    … ${divergence.length - 6} more`]]);
  } else if (v && !s.verify_running) {
    const result = v.state === 'differs' ? `${v.tables_differing} of ${v.tables_total} tables differ` : v.state === 'failed' ? `failed: ${v.error ?? ''}` : `${v.state}, ${v.tables_total} tables`;
    out.push([['Verify   ', { bold: true }], [`${v.verify_id}${v.peer_node_id ? ` against ${v.peer_node_id}` : ''} ${ago(v.finished_at ?? v.requested_at, now)}: ${result}`, v.state === 'failed' ? { color: 'red' } : {}]]);
  }
  return out;
}

// What the node's agent watches (node_overview.replication, from the node's
// own database): a line per subscription and slot with its facts (wrapped,
// three lines at most), and for one that is degraded its reason (two).
export function replicationOverlayLines(node: NodeView, inner: number, now = new Date()): Array<Array<[string, Attr?]>> {
  const state = node.state;
  const rows = replicationRows(state);
  const out: Array<Array<[string, Attr?]>> = [];
  if (!rows.length) return out;
  const lag = state ? nodeLagText(state) : undefined;
  const observed = state?.replication_observed_at ? `observed ${ago(state.replication_observed_at, now)}` : '';
  out.push([['Replication ', { bold: true }], [[lag, observed].filter(Boolean).join(' · ')]]);
  const width = Math.max(10, inner - 4);
  for (const r of rows) {
    const ok = r.status === 'healthy';
    const text = `${r.kind} ${replicationObjectText(r)}: ${replicationFactsText(r, now).join(' · ')}`;
    wrapAtMost(text, width, 3).forEach((part, i) => out.push(i ? [['    '], [part]] : [[ok ? '  ✓ ' : '  ⚠ ', { color: ok ? 'green' : 'yellow', bold: !ok }], [part]]));
    if (!ok && r.reason) wrapAtMost(r.reason, width, 2).forEach((part) => out.push([['    '], [part, { color: 'yellow' }]]));
  }
  return out;
}

export function renderInitOverlay(p: Painter, area: Area, node: NodeView): void {
  const { x, y, width, height } = area;
  const inner = width - 4;
  const progress = node.progress;
  const state = node.state?.init_state ?? node.registry.init_state;
  const source = progress?.source_node_id ?? node.state?.init_source_node;
  // a merge's peer both sends and receives: ↔, not ←
  const merge = progress?.method === 'merge' ? (node.state?.merge ?? null) : null;
  const arrow = progress?.method === 'merge' ? '↔' : '←';
  const title = ` ${node.id}${source ? ` ${arrow} ${merge?.peer_node_id ?? source}` : ''}${progress ? ` · ${progress.method}` : ''} · ${state.toUpperCase()} `;

  const lines: Array<Array<[string, Attr?]>> = [];
  const line = (...parts: Array<[string, Attr?]>) => lines.push(parts);
  const last = height - 2;

  if (node.reachable === false) line([`unreachable: ${node.problem ?? 'no answer'} (showing what was last read)`, { color: 'red' }]);
  // a source writing snapshots: a bar each, whatever its own init does
  for (const g of node.generating ?? []) {
    const tail = ` ${fitRight(percent(g.overall_percent), 4)}  parts ${g.parts_done}/${g.parts_total}`;
    const head = `Snapshot ${g.snapshot_id} `;
    line([head, { bold: true }], ['['], [bar(Math.max(10, inner - head.length - tail.length - 2), num(g.overall_percent) ?? 0), { color: 'cyan' }], [']'], [tail]);
    line(['        '], [[
      `${bytes(g.bytes_written)} written`,
      `${bytes(g.bytes_stored)} stored`,
      num(g.bytes_per_second) === undefined ? '' : bytesPerSecond(g.bytes_per_second),
      `workers ${g.workers_active}/${g.parallel}`,
      `ETA ${duration(g.eta_seconds)}`,
    ].filter(Boolean).join(' · ')]);
  }
  verifyLines(node, inner).forEach((parts) => line(...parts));
  replicationOverlayLines(node, inner).forEach((parts) => line(...parts));
  if (!progress) {
    const nothing = progress === null ? `no initialization recorded on ${node.id}` : node.reachable === false ? 'nothing read yet' : 'reading…';
    line([nothing, { color: 'white' }]);
    if (node.state?.error) line([`last error: ${node.state.error}`, { color: 'red' }]);
    draw();
    return;
  }

  if (merge) {
    const role = merge.role === 'a' ? 'node A, coordinating' : `node B, ${merge.coordinator} coordinates`;
    const end = merge.outcome ? ` · ${merge.outcome}` : merge.step ? ` · step ${merge.step}` : '';
    line(['Merge   ', { bold: true }], [`${merge.merge_id} with ${merge.peer_node_id ?? source ?? '?'} (${role})${merge.strategy ? ` · ${merge.strategy}` : ''}${end}`]);
  }
  const reinit = progress.reinit ?? null;
  if (reinit) line(['Reinit  ', { bold: true }], [`${reinitScope(reinit)}${reinit.outcome ? ` · ${reinit.outcome}` : reinit.step ? ` · step ${reinit.step}` : ''}`]);
  // a reinit's phases come from init_status (steep_repl.reinit_phases)
  const marks = phaseMarks(progress.phase, progress.phases, progress.method);
  const phaseLine: Array<[string, Attr?]> = [['Phases  ', { bold: true }]];
  marks.forEach((m, i) => phaseLine.push(i ? [' '] : [''], m));
  line(...phaseLine);
  if (progress.method === 'two-phase') {
    const recorded = node.methodState?.snapshot_id;
    const given = progress.options?.snapshot;
    line(['Snapshot ', { bold: true }], [String(recorded ?? given ?? '-')]);
  }

  const overall = num(progress.overall_percent) ?? 0;
  // direct: parts as well (resync: left to PostgreSQL's table sync after the snapshot was lost)
  const parts = node.parts ?? null;
  const partsTail = parts ? `  parts ${parts.done}/${parts.total}${parts.resync ? ` (${parts.resync} resync)` : ''}` : '';
  const overallTail = ` ${fitRight(percent(overall), 4)}  tables ${progress.tables_done}/${progress.tables_total}${partsTail}`;
  const overallBar = Math.max(10, inner - 8 - overallTail.length - 2);
  line(['Overall ', { bold: true }], [`[${bar(overallBar, overall)}]`, { color: 'green' }], [overallTail]);

  const tables = node.tables ?? [];
  const active = tables.filter((t) => t.state === 'copying');
  const completed = tables.filter((t) => t.state === 'copied' || t.state === 'done').sort(byCompletion);
  const pending = tables.filter((t) => t.state === 'pending');
  const failed = tables.filter((t) => t.state === 'failed');

  const totals = [
    `rows ${count(progress.rows_copied)}${num(progress.rows_total) ? `/${count(progress.rows_total)}` : ''}`,
    `bytes ${bytes(progress.bytes_copied)}${num(progress.bytes_total) ? `/${bytes(progress.bytes_total)}` : ''}`,
    num(progress.rows_per_second) === undefined ? '' : rowsPerSecond(progress.rows_per_second),
    num(progress.bytes_per_second) === undefined ? '' : bytesPerSecond(progress.bytes_per_second),
  ].filter(Boolean);
  const timing = [
    `workers ${progress.workers_active}${progress.workers_max ? `/${progress.workers_max}` : ''}`,
    `elapsed ${duration(progress.elapsed_seconds)}`,
    `ETA ${duration(progress.eta_seconds)}`,
  ];
  if (num(progress.lag_bytes) !== undefined) timing.push(`lag ${bytes(progress.lag_bytes)}`);

  // Rows left for the table sections once the fixed lines are placed.
  const errorLines = progress.error ? Math.min(3, wrap(progress.error, inner - 8).length) : 0;
  const fixedBelow = 2 + errorLines + 1;
  let room = last - lines.length - fixedBelow;

  const copyingParts = parts && !['done', 'failed', 'cancelling'].includes(progress.phase) ? parts.active : [];
  if (parts) {
    // One bar per copy worker: its part, k of the table's n.
    const shownParts = copyingParts.slice(0, Math.max(1, Math.min(copyingParts.length, room - 3)));
    const nameWidth = Math.min(32, Math.max(...shownParts.map((a) => stringWidth(partName(a))), 8));
    const partWidth = Math.max(...shownParts.map((a) => `${a.part_no}/${a.part_count}`.length), 3);
    for (const a of shownParts) {
      const tail = ` ${fitRight(percent(a.percent), 4)} ${fitRight(rowsPerSecond(a.rows_per_second), 14)}`;
      const head = `  w${a.worker ?? '?'} `;
      const partNo = ` ${fitRight(`${a.part_no}/${a.part_count}`, partWidth)}`;
      const width = Math.max(6, inner - head.length - nameWidth - partNo.length - 3 - tail.length);
      line([head], [fit(partName(a), nameWidth), { bold: true }], [partNo], [' ['], [bar(width, num(a.percent) ?? 0), { color: 'cyan' }], [']'], [tail]);
      room--;
    }
    if (copyingParts.length > shownParts.length) line([`  … ${copyingParts.length} parts copying`]);
  } else if (active.length) {
    const nameWidth = Math.min(28, Math.max(...active.map((t) => stringWidth(tableName(t))), 8));
    for (const t of active.slice(0, Math.max(1, Math.min(active.length, room - 3)))) {
      const tail = ` ${fitRight(percent(t.percent), 4)} ${fitRight(rowsPerSecond(t.rows_per_second), 14)}`;
      const width = Math.max(6, inner - 2 - nameWidth - 3 - tail.length);
      line(['  '], [fit(tableName(t), nameWidth), { bold: true }], [' ['], [bar(width, num(t.percent) ?? 0), { color: 'cyan' }], [']'], [tail]);
      room--;
    }
    if (active.length > room && room <= 3) line([`  … ${active.length} tables copying`]);
  } else if (progress.current_table) {
    line(['  '], [progress.current_table, { bold: true }], [` ${percent(progress.current_table_percent)}`]);
  }

  line(['Totals  ', { bold: true }], [totals.join(' · ')]);
  line(['        '], [timing.join(' · ')]);

  if (failed.length) line(['Failed  ', { bold: true, color: 'red' }], [failed.map((t) => `${tableName(t)}: ${t.error ?? 'error'}`).join(' · '), { color: 'red' }]);

  room = last - lines.length - (pending.length ? 1 : 0) - (progress.not_replicated?.length ? 1 : 0) - errorLines;
  if (completed.length && room > 0) {
    const shown = completed.slice(0, Math.max(1, room - (completed.length > room ? 1 : 0)));
    const nameWidth = Math.min(36, Math.max(...shown.map((t) => stringWidth(tableName(t)))));
    line(['Done    ', { bold: true }], [`${completed.length} table${completed.length === 1 ? '' : 's'}`]);
    for (const t of shown.slice(0, room - 1)) {
      line(['  ✓ ', { color: 'green' }], [fit(tableName(t), nameWidth)], [`  ${fitRight(bytes(t.bytes_total ?? t.bytes_copied), 8)}  ${fitRight(count(t.rows_copied), 6)} rows  ${duration(t.seconds)}`]);
    }
    if (completed.length > room - 1 && room > 1) line([`    … ${completed.length - (room - 1)} more`]);
  }
  if (pending.length) line(['Pending ', { bold: true }], [`${pending.length}: ${pending.map(tableName).join(', ')}`]);
  // what the init went ahead without (schema sync auto or manual)
  const notReplicated = progress.not_replicated ?? [];
  if (notReplicated.length) {
    line(['Skipped ', { bold: true, color: 'yellow' }], [`${notReplicated.length} not replicated: ${notReplicated.map((t) => `${t.label} (${t.reason})`).join(', ')}`, { color: 'yellow' }]);
  }
  if (progress.error) {
    wrap(progress.error, inner - 8)
      .slice(0, 3)
      .forEach((part, i) => line([i ? '        ' : 'Error   ', { bold: true, color: 'red' }], [part, { color: 'red' }]));
  }
  draw();

  function draw() {
    // The box is as tall as its content, at most the area.
    const shown = lines.slice(0, last);
    const boxHeight = Math.max(4, shown.length + 2);
    for (let row = 0; row < boxHeight; row++) p.put(x, y + row, ' '.repeat(width));
    p.put(x, y, `┌${'─'.repeat(width - 2)}┐`, { color: 'cyan' });
    p.put(x + 2, y, title, stateAttr(state));
    for (let row = 1; row < boxHeight - 1; row++) {
      p.put(x, y + row, '│', { color: 'cyan' });
      p.put(x + width - 1, y + row, '│', { color: 'cyan' });
    }
    p.put(x, y + boxHeight - 1, `└${'─'.repeat(width - 2)}┘`, { color: 'cyan' });
    const help = ' Esc close · C cancel · I init · R reinit ';
    p.put(x + width - 2 - help.length, y + boxHeight - 1, help, { color: 'cyan' });
    shown.forEach((parts, i) => {
      let cx = x + 2;
      const rowY = y + 1 + i;
      for (const [text, attr] of parts) {
        const room = x + width - 2 - cx;
        if (room <= 0) break;
        const cut = stringWidth(text) > room ? fit(text, room) : text;
        p.put(cx, rowY, cut, attr ?? {});
        cx += stringWidth(cut);
      }
    });
  }
}
