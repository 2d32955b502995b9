// Following a reinit to its end: it is the node's init_progress row, so
// followInit carries it (state reinitializing until synchronized, diverged,
// failed, or uninitialized after a --full cancel), with the verify of its
// last phase as a second line. Then what it came to and the exit code.
import { ExitCode, ExitCodeValue } from '../lib/errors';
import { percent, shellWord } from '../lib/format';
import { tableLabel } from '../lib/identifiers';
import type { InitStatus } from '../lib/sql/getInitStatus';
import type { DivergedTable, ReinitState } from '../lib/sql/listNodes';
import { exitCodeForInit, liveRenderer, phaseText, progressLines, VerifyProgressNotification } from './init-follow';

export const reinitOf = (s: InitStatus): ReinitState | null => ((s.progress as { reinit?: ReinitState | null } | null)?.reinit ?? null);

// "tables public.orders, public.lines", "schema sales", "every table"
export function reinitScopeText(r: ReinitState | null): string {
  if (!r) return 'the node';
  if (r.scope === 'full') return 'every table';
  const tables = (r.tables ?? []).map((t) => tableLabel(t));
  if (r.scope === 'schema') return `schema ${r.schema ?? ''}${tables.length ? ` (${tables.join(', ')})` : ''}`.trim();
  return `table${tables.length === 1 ? '' : 's'} ${tables.join(', ')}`;
}

// "  verify  [####------]  40.0%  hashing  2/5 tables  public.orders"
export function reinitVerifyLine(v: VerifyProgressNotification, width = 16): string {
  const overall = Math.min(100, Math.max(0, Number(v.percent ?? 0)));
  const filled = Math.floor((overall / 100) * width);
  return [
    `  verify ${v.verify_id}`,
    `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`,
    percent(overall, 1).padStart(6),
    v.phase ?? '',
    `${v.tables_done ?? 0}/${v.tables_total ?? 0} tables`,
    v.current_table ?? '',
  ]
    .filter(Boolean)
    .join('  ');
}

// The init's lines, and while it verifies the verify's own bar.
export function reinitRenderer(stream: NodeJS.WriteStream): {
  render(s: InitStatus): void;
  verify(v: VerifyProgressNotification): void;
  end(): void;
} {
  let verify: VerifyProgressNotification | undefined;
  let last: InitStatus | undefined;
  const inner = liveRenderer<InitStatus>(
    stream,
    (s) => [...progressLines(s), ...(verify && s.progress?.phase === 'verifying' ? [reinitVerifyLine(verify)] : [])],
    (s) => (s.progress ? phaseText(s) : s.state),
  );
  return {
    render(s) {
      last = s;
      inner.render(s);
    },
    verify(v) {
      verify = v;
      if (last && stream.isTTY) inner.render(last);
    },
    end: () => inner.end(),
  };
}

// A cancel the DBA asked for ends the reinit as a cancel (4) whatever state
// the node is back in: before the tables left the publication nothing
// changed; after it they were fully re-copied (docs/verify.md, Cancel).
export function reinitCancelled(s: InitStatus): boolean {
  return Boolean(s.progress?.cancel_requested_at) || s.state === 'uninitialized';
}

export function exitCodeForReinit(s: InitStatus): ExitCodeValue {
  if (reinitCancelled(s)) return ExitCode.cancelled;
  if (s.state === 'synchronized') return ExitCode.ok;
  if (s.state === 'diverged') return ExitCode.error;
  return exitCodeForInit(s);
}

// The steps after which the tables had left the publication (a cancel then re-copies them fully).
const untouchedSteps = new Set([undefined, null, '', 'checked', 'preparing', 'started']);

// What the settled reinit came to, as lines: [text, to stderr].
export function describeReinit(s: InitStatus, nodeId: string, divergence: DivergedTable[]): Array<[string, boolean]> {
  const r = reinitOf(s);
  const what = reinitScopeText(r);
  const source = s.source_node_id ?? s.progress?.source_node_id ?? '?';
  if (reinitCancelled(s)) {
    if (s.state === 'uninitialized') return [[`reinit of ${nodeId} cancelled: the node is uninitialized (a --full reinit's cancel is an init's)`, true]];
    if (r?.scope !== 'full' && untouchedSteps.has(r?.step as string | undefined)) {
      return [[`reinit of ${nodeId} cancelled before anything changed; the node is ${s.state} again`, true]];
    }
    return [[`reinit of ${nodeId} cancelled after ${what} had left the publication: they were fully re-copied from ${source} (not verified); the node is ${s.state}`, true]];
  }
  if (s.state === 'synchronized') return [[`${nodeId} is synchronized: ${what} re-copied from ${source} and verified equal`, false]];
  if (s.state === 'diverged') {
    const lines: Array<[string, boolean]> = [[`error: ${what} of ${nodeId} re-copied from ${source}, but the verify found differences; the node is diverged`, true]];
    for (const d of divergence) lines.push([`  ${d.label}: missing ${d.rows_missing}, extra ${d.rows_extra}, different ${d.rows_different} (verify ${d.verify_id})`, true]);
    lines.push([`see them: steep-repl node verify ${shellWord(nodeId)} --tables ${shellWord(divergence.map((d) => d.label).join(','))}`, true]);
    return lines;
  }
  return [[`error: reinit of ${nodeId} ${s.state}: ${s.progress?.error ?? ''}`.trimEnd(), true]];
}
