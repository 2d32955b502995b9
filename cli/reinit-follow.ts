// Following a reinit to its end: it is the node's init_progress row, so
// followInit carries it (state reinitializing until synchronized, diverged,
// failed, or uninitialized after a --full cancel), with the verify of its
// last phase as a second line. Then what it came to and the exit code.
import { ExitCode, ExitCodeValue } from '../lib/errors';
import { percent, shellWord } from '../lib/format';
import { tableLabel } from '../lib/identifiers';
import type { InitStatus } from '../lib/sql/getInitStatus';
import type { DivergedTable, ReinitState } from '../lib/sql/listNodes';
import type { VerifyProgressNotification } from '../lib/notifications';
import { exitCodeForInit, liveRenderer, phaseText, progressLines } from './init-follow';

export const reinitOf = (s: InitStatus): ReinitState | null => s.progress?.reinit ?? null;

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

// How a settled reinit ended (finish_reinit records it in the reinit):
// unchanged (cancelled or failed before its point of no return), recopied
// (cancelled after it: fully re-copied, not verified), or how the verify
// of the re-copied tables ended; undefined when the node left
// reinitializing otherwise (failed after the point of no return, or
// uninitialized after a --full cancel).
export const reinitOutcome = (s: InitStatus): ReinitState['outcome'] => reinitOf(s)?.outcome;

// Exit codes (SPEC 4.8): 0 the re-copied tables verified equal, 1 they
// differ, stayed unsettled, or the reinit or its verify failed, 4 cancelled.
// cancelled: the DBA's cancel ended it (a cancel before the job started
// leaves no cancel_requested_at: its reinit.cancelled event says so).
export function exitCodeForReinit(s: InitStatus, cancelled = Boolean(s.progress?.cancel_requested_at)): ExitCodeValue {
  const outcome = reinitOutcome(s);
  if (s.state === 'uninitialized' || outcome === 'recopied' || outcome === 'cancelled') return ExitCode.cancelled;
  if (outcome === 'unchanged') return cancelled ? ExitCode.cancelled : ExitCode.error;
  if (outcome === 'equal') return ExitCode.ok;
  if (outcome) return ExitCode.error;
  return s.state === 'synchronized' ? ExitCode.ok : exitCodeForInit(s);
}

// What the settled reinit came to, as lines: [text, to stderr]. failure:
// why a reinit that changed nothing failed (its reinit.failed event).
export function describeReinit(
  s: InitStatus,
  nodeId: string,
  divergence: DivergedTable[],
  end: { cancelled: boolean; failure?: string } = { cancelled: Boolean(s.progress?.cancel_requested_at) },
): Array<[string, boolean]> {
  const failure = end.failure;
  const r = reinitOf(s);
  const what = reinitScopeText(r);
  const source = s.source_node_id ?? s.progress?.source_node_id ?? '?';
  const outcome = reinitOutcome(s);
  const stillDiverged: Array<[string, boolean]> =
    s.state === 'diverged'
      ? [
          ...divergence.map((d): [string, boolean] => [`  ${d.label}: missing ${d.rows_missing}, extra ${d.rows_extra}, different ${d.rows_different} (verify ${d.verify_id ?? '?'})`, true]),
          [`re-copy them: steep-repl node reinit ${shellWord(nodeId)} --tables ${shellWord(divergence.map((d) => d.label).join(','))}`, true],
        ]
      : [];
  if (s.state === 'uninitialized') return [[`reinit of ${nodeId} cancelled: the node is uninitialized (a --full reinit's cancel is an init's)`, true]];
  switch (outcome) {
    case 'unchanged':
      return end.cancelled
        ? [[`reinit of ${nodeId} cancelled before anything changed; the node is ${s.state} again`, true]]
        : [[`error: reinit of ${nodeId} failed before anything changed${failure ? `: ${failure}` : ''}; the node is ${s.state} again`, true]];
    case 'recopied':
      return [[`reinit of ${nodeId} cancelled after ${what} had left the publication: they were fully re-copied from ${source}, not verified; the node is ${s.state}`, true]];
    case 'equal':
      if (s.state === 'diverged') {
        return [[`${what} of ${nodeId} re-copied from ${source} and verified equal; the node stays diverged, other tables differ:`, false], ...stillDiverged.map(([l]): [string, boolean] => [l, false])];
      }
      return [[`${nodeId} is synchronized: ${what} re-copied from ${source} and verified equal`, false]];
    case 'differs':
      return [[`error: ${what} of ${nodeId} re-copied from ${source}, but the verify found differences; the node is diverged`, true], ...stillDiverged];
    case 'unsettled':
      return [[`error: ${what} of ${nodeId} re-copied from ${source}; the verify could not settle every row (they kept changing on ${source}); the node is ${s.state}: verify again with steep-repl node verify ${shellWord(nodeId)}`, true]];
    case 'failed':
      return [[`error: ${what} of ${nodeId} re-copied from ${source}; the verify failed${failure ? `: ${failure}` : ''}; the node is ${s.state}: verify again with steep-repl node verify ${shellWord(nodeId)}`, true]];
    case 'cancelled':
      return [[`reinit of ${nodeId} cancelled while verifying: ${what} re-copied from ${source}, not verified; the node is ${s.state}`, true], ...stillDiverged];
    default:
      return [[`error: reinit of ${nodeId} ${s.state}: ${s.progress?.error ?? ''}`.trimEnd(), true]];
  }
}
