// The question the R key asks before a reinit, as a box over the view:
// what would be re-copied (the diverged tables, the default when there
// are some, or the whole node), from where, and the keys.
import { Area, Attr, fit, Painter, wrap } from './draw';

export interface ReinitChoice {
  kind: 'tables' | 'full';
  // the tables as format('%I.%I') labels (start_reinit parses them)
  tables: string[];
}

export interface ReinitQuestion {
  nodeId: string;
  source: string | null;
  method: string | null;
  choices: ReinitChoice[];
  chosen: number;
}

export function choiceText(c: ReinitChoice, method: string | null): string {
  if (c.kind === 'full') return `the whole node: every table, with its method${method ? ` ${method}` : ''}`;
  return `the ${c.tables.length} diverged table${c.tables.length === 1 ? '' : 's'}: ${c.tables.join(', ')}`;
}

export function renderReinitConfirm(p: Painter, screen: Area, q: ReinitQuestion): void {
  const width = Math.min(screen.width - 4, 86);
  const inner = width - 4;
  const lines: Array<[string, Attr]> = [];
  q.choices.forEach((c, i) => {
    const mark = i === q.chosen ? '▶' : ' ';
    wrap(`${mark} [${i + 1}] ${choiceText(c, q.method)}`, inner).forEach((part, k) =>
      lines.push([k ? `      ${part}` : part, i === q.chosen ? { bold: true, color: 'yellow' } : {}]),
    );
  });
  lines.push(['', {}]);
  const chosen = q.choices[q.chosen];
  const what =
    chosen.kind === 'full'
      ? `Every table of ${q.nodeId} is emptied and copied again from ${q.source ?? 'its source'}; the node is reinitializing until it is verified.`
      : `They are emptied on ${q.nodeId} (not replicated to any other node) and copied again from ${q.source ?? 'its source'}; every other table keeps replicating. Then they are verified.`;
  wrap(what, inner).forEach((part) => lines.push([part, {}]));
  lines.push(['', {}]);
  lines.push([`y/Enter: re-copy${q.choices.length > 1 ? ` · 1-${q.choices.length} or ↑↓: choose` : ''} · Esc: abort`, { bold: true }]);

  const height = lines.length + 2;
  const x = screen.x + Math.max(0, Math.floor((screen.width - width) / 2));
  const y = screen.y + Math.max(1, Math.floor((screen.height - height) / 3));
  const title = ` Reinit ${q.nodeId}? `;
  p.put(x, y, `┌${'─'.repeat(width - 2)}┐`, { color: 'yellow' });
  p.put(x + 2, y, title.length > width - 4 ? fit(title, width - 4) : title, { color: 'yellow', bold: true });
  lines.forEach(([text, attr], i) => {
    p.put(x, y + 1 + i, '│', { color: 'yellow' });
    p.put(x + 1, y + 1 + i, ` ${fit(text, inner)} `, attr);
    p.put(x + width - 1, y + 1 + i, '│', { color: 'yellow' });
  });
  p.put(x, y + height - 1, `└${'─'.repeat(width - 2)}┘`, { color: 'yellow' });
}
