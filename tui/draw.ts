// Drawing primitives the views share: a clipped text painter over a
// terminal-kit ScreenBuffer, state colours, bars and text fitting. Widths
// are terminal cells, not characters: ノード takes six. Numbers are
// formatted by lib/format, as in the CLI.
import { stringWidth, truncateString } from 'terminal-kit';
import type { ScreenBuffer } from 'terminal-kit';

export interface Area {
  x: number;
  y: number;
  width: number;
  height: number;
}

export type Attr = ScreenBuffer.Attributes;

export interface Painter {
  // Writes text at (x, y), cut at the right edge of the area it was made for.
  put(x: number, y: number, text: string, attr?: Attr): void;
}

export function painterFor(buffer: ScreenBuffer, area: Area): Painter {
  return {
    put(x, y, text, attr = {}) {
      if (y < area.y || y >= area.y + area.height || x >= area.x + area.width) return;
      const room = area.x + area.width - x;
      const chars = truncateString(text, room);
      if (chars.length === 0) return;
      buffer.put({ x, y, attr, wrap: false, dx: 1, dy: 0 }, '%s', chars);
    },
  };
}

export const stateColors: Record<string, string> = {
  uninitialized: 'white',
  preparing: 'yellow',
  copying: 'cyan',
  catching_up: 'blue',
  synchronized: 'green',
  diverged: 'magenta',
  failed: 'red',
  reinitializing: 'yellow',
};

export function stateAttr(state: string | undefined): Attr {
  return { color: stateColors[state ?? ''] ?? 'white', bold: state !== 'uninitialized' };
}

// Exactly width cells: padded, or cut with … (a wide character that would
// straddle the edge is left out and its cell padded).
export function fit(text: string, width: number): string {
  const room = Math.max(0, width);
  const cells = stringWidth(text);
  if (cells <= room) return text + ' '.repeat(room - cells);
  const cut = room <= 1 ? truncateString(text, room) : `${truncateString(text, room - 1)}…`;
  return cut + ' '.repeat(room - stringWidth(cut));
}

export function fitRight(text: string, width: number): string {
  const cells = stringWidth(text);
  return cells >= width ? fit(text, width) : ' '.repeat(width - cells) + text;
}

export function bar(width: number, percent: number): string {
  const inner = Math.max(0, width);
  const filled = Math.round((inner * Math.min(100, Math.max(0, percent))) / 100);
  return '█'.repeat(filled) + '░'.repeat(inner - filled);
}

// Splits text into lines of at most width characters, at spaces where it can.
export function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let rest = text;
  while ([...rest].length > width) {
    const chars = [...rest];
    const space = chars.lastIndexOf(' ', width);
    const cut = space > width / 2 ? space : width;
    out.push(chars.slice(0, cut).join('').trimEnd());
    rest = chars.slice(cut).join('').trimStart();
  }
  out.push(rest);
  return out;
}

// wrap, at most max lines; a cut last line ends with …
export function wrapAtMost(text: string, width: number, max: number): string[] {
  const lines = wrap(text, width);
  if (lines.length <= max) return lines;
  const kept = lines.slice(0, max);
  kept[max - 1] = `${truncateString(kept[max - 1], Math.max(0, width - 1))}…`;
  return kept;
}
