// Follows one merge run on node A's database until it has ended
// (followStatus: the agent's progress, {kind: 'merge', merge_id, ...} on
// steep_repl_progress, and its merge.* events; merge_status re-read on
// each), the live line, then the result as a DBA reads it.
import { Client, ClientConfig } from 'pg';
import { ExitCode, ExitCodeValue } from '../lib/errors';
import { count, percent, shellWord } from '../lib/format';
import { tableLabel } from '../lib/identifiers';
import { MergeStatus, MergeTable, mergeStatus, stepsPastExchange } from '../lib/sql/mergeStatus';
import { followStatus, StatusFollower } from './follow-status';
import { table } from './render';
import { mergedAdvice } from './node-format';
import { keyText } from './verify-follow';

export const mergeEnded = (s: { state: string }): boolean => !['queued', 'running'].includes(s.state);

export function followMerge(
  config: ClientConfig,
  client: Client,
  mergeId: number,
  options: { render(s: MergeStatus): void; pollMs?: number },
): StatusFollower<MergeStatus> {
  return followStatus<MergeStatus>(config, client, {
    read: (reader) => mergeStatus(reader, mergeId),
    ended: mergeEnded,
    // progress carries merge_id, events carry it in their details
    matches: (payload) => {
      const p = payload as { merge_id?: unknown; details?: { merge_id?: unknown } } | null;
      return Number(p?.merge_id ?? p?.details?.merge_id) === mergeId;
    },
    ...options,
  });
}

const labelOf = (t: MergeTable): string => t.label ?? tableLabel(t);
const plural = (n: number, word: string) => `${count(n)} ${word}${Number(n) === 1 ? '' : 's'}`;

// "[########----------------]   40.2%  comparing  3/8 tables  120 only on A · 30 only on B · 12 conflicts"
export function mergeLine(s: MergeStatus, width = 24): string {
  const overall = Math.min(100, Math.max(0, Number(s.percent ?? 0)));
  const filled = Math.floor((overall / 100) * width);
  const parts = [
    `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`,
    percent(overall, 1).padStart(6),
    s.state === 'running' ? (s.phase ?? 'running') : s.state === 'queued' ? 'waiting for the agent' : s.state,
    `${s.tables_done ?? 0}/${s.tables_total ?? 0} tables`,
  ];
  const current = (s.tables ?? []).find((t) => t.status === 'comparing');
  if (s.state === 'running' && current) parts.push(labelOf(current));
  // what the comparison found so far, then what the exchange wrote
  if (['exchanging', 'catching_up', 'verifying'].includes(s.phase ?? '') && s.mode === 'merge') {
    parts.push(`${count(s.rows_to_a)} to ${s.node_a} · ${count(s.rows_to_b)} to ${s.node_b}`);
  } else if (s.tables_done || Number(s.rows_only_a) || Number(s.rows_only_b) || Number(s.rows_conflicting)) {
    parts.push(`${count(s.rows_only_a)} only on A · ${count(s.rows_only_b)} only on B · ${plural(s.rows_conflicting, 'conflict')}`);
  }
  return parts.join('  ');
}

// node merge's exit codes (SPEC §4.8): 0 analyzed, resolving (conflicts
// recorded) or merged; 1 failed or the final verify found differences; 3 a
// schema difference; 4 cancelled; 5 timeout; 6 a node could not be reached.
export function exitCodeForMerge(s: Pick<MergeStatus, 'state' | 'failure_kind'>): ExitCodeValue {
  switch (s.state) {
    case 'analyzed':
    case 'resolving':
    case 'merged':
      return ExitCode.ok;
    case 'cancelled':
      return ExitCode.cancelled;
    case 'failed':
      if (s.failure_kind === 'schema') return ExitCode.schemaMismatch;
      if (s.failure_kind === 'timeout') return ExitCode.timeout;
      if (s.failure_kind === 'connection') return ExitCode.connection;
      return ExitCode.error;
    default:
      return ExitCode.error;
  }
}

// What a run is, for its first line: "analysis 7", "dry run 7 (prefer-a …)", "merge 7 (prefer-a …)".
export function runName(s: Pick<MergeStatus, 'merge_id' | 'mode' | 'strategy' | 'node_a' | 'node_b' | 'options'>): string {
  const how = s.strategy ? ` (${s.strategy}${s.strategy === 'last-modified' && s.options?.column ? ` by ${s.options.column}` : ''})` : '';
  switch (s.mode) {
    case 'analyze':
      return `analysis ${s.merge_id} of ${s.node_a} and ${s.node_b}`;
    case 'dry_run':
      return `dry run ${s.merge_id} of ${s.node_a} and ${s.node_b}${how}`;
    case 'record':
      return `manual merge ${s.merge_id} of ${s.node_a} and ${s.node_b}`;
    default:
      return `merge ${s.merge_id} of ${s.node_a} and ${s.node_b}${how}`;
  }
}

// The per-table counts; what the strategy writes (would write, for a dry
// run) and the final verify's result where the run has them.
export function mergeTable(s: MergeStatus): string {
  const writes = s.mode === 'dry_run' || s.mode === 'merge';
  const verify = s.mode === 'merge';
  const headers = ['TABLE', 'ROWS A', 'ROWS B', 'IDENTICAL', 'ONLY A', 'ONLY B', 'CONFLICTS'];
  if (writes) headers.push(s.mode === 'dry_run' ? 'WOULD TO A' : 'TO A', s.mode === 'dry_run' ? 'WOULD TO B' : 'TO B');
  if (verify) headers.push('VERIFY');
  const noteOf = (t: MergeTable) =>
    [t.note, Number(t.rows_changed_during) ? `${count(t.rows_changed_during)} rows changed during the merge kept` : ''].filter(Boolean).join('; ');
  const notes = (s.tables ?? []).some((t) => noteOf(t));
  if (notes) headers.push('NOTE');
  const rows = (s.tables ?? []).map((t) => {
    const row: Array<string | number | null> = [labelOf(t), t.rows_a, t.rows_b, t.rows_identical, t.rows_only_a, t.rows_only_b, t.rows_conflicting];
    if (writes) row.push(t.rows_to_a, t.rows_to_b);
    if (verify) row.push(t.verify?.status ?? (t.status === 'failed' ? 'failed' : '-'));
    if (notes) row.push(noteOf(t));
    return row;
  });
  return table(headers, rows).trimEnd();
}

// The sample keys of each table, a line per kind: "  only on node_a (120): (id=5), (id=6), …".
export function sampleKeyLines(s: MergeStatus): string[] {
  const lines: string[] = [];
  for (const t of s.tables ?? []) {
    const kinds: Array<[string, Array<Record<string, unknown>> | undefined, number]> = [
      [`only on ${s.node_a}`, t.sample_keys?.only_a, t.rows_only_a],
      [`only on ${s.node_b}`, t.sample_keys?.only_b, t.rows_only_b],
      ['conflicting', t.sample_keys?.conflicting, t.rows_conflicting],
    ];
    const shown = kinds.filter(([, keys]) => keys?.length);
    if (!shown.length) continue;
    lines.push(`${labelOf(t)}:`);
    for (const [what, keys, total] of shown) {
      const more = Number(total) > keys!.length ? `, … ${count(Number(total) - keys!.length)} more` : '';
      lines.push(`  ${what} (${count(total)}): ${keys!.map(keyText).join(', ')}${more}`);
    }
  }
  return lines;
}

const command = (s: Pick<MergeStatus, 'node_a' | 'node_b'>, tail: string) => `steep-repl node merge ${shellWord(s.node_a)} ${shellWord(s.node_b)} ${tail}`;

// The result for people: [text, to stderr]. One line about the run, the
// table, the sample keys, then what to do next.
export function describeMerge(s: MergeStatus): Array<[string, boolean]> {
  const out: Array<[string, boolean]> = [];
  const say = (line: string, err = false) => out.push([line, err]);
  const name = runName(s);
  const n = s.tables?.length ?? s.tables_total;
  const found = `${plural(n, 'table')}: ${count(s.rows_identical)} rows identical, ${count(s.rows_only_a)} only on ${s.node_a}, ${count(s.rows_only_b)} only on ${s.node_b}, ${plural(s.rows_conflicting, 'conflict')}`;
  const exchanged = stepsPastExchange.includes(s.step);
  switch (s.state) {
    case 'analyzed':
      if (s.mode === 'dry_run') {
        say(`${name}: ${found}; it would write ${count(s.rows_to_a)} rows on ${s.node_a} and ${count(s.rows_to_b)} on ${s.node_b} (nothing was written)`);
      } else {
        say(`${name}: ${found}`);
      }
      break;
    case 'resolving':
      say(`${name}: ${found}`);
      break;
    case 'merged':
      say(`${s.node_a} and ${s.node_b} are merged (merge ${s.merge_id}, ${s.strategy}): ${count(s.rows_to_a)} rows written on ${s.node_a}, ${count(s.rows_to_b)} on ${s.node_b}; both synchronized, replicating both ways`);
      break;
    case 'differs': {
      const differing = (s.tables ?? []).filter((t) => t.verify?.status === 'differs').map(labelOf);
      say(`error: ${name}: exchanged and subscribed, but the final verify found differences in ${differing.length ? differing.join(', ') : 'some tables'}; both nodes are diverged`, true);
      break;
    }
    case 'cancelled':
      say(
        exchanged
          ? `${name} cancelled after the exchange: the rows already exchanged stay on both nodes; the replication it set up is removed and both nodes are uninitialized`
          : `${name} cancelled; nothing was written on the nodes`,
        true,
      );
      break;
    case 'failed':
      say(`error: ${name} failed: ${s.error ?? 'no reason recorded'}${s.hint ? `\nhint: ${s.hint}` : ''}`, true);
      break;
    default:
      say(`${name}: ${s.state}`);
  }
  if ((s.tables ?? []).length && s.state !== 'cancelled') {
    say(mergeTable(s));
    for (const line of sampleKeyLines(s)) say(line);
  }
  if (s.state === 'resolving') {
    const c = s.conflicts ?? { total: s.rows_conflicting, unresolved: s.rows_conflicting };
    if (!Number(c.total)) {
      say(`no conflicts to resolve; merge with: ${command(s, '--apply')}`);
    } else {
      say(`${plural(c.total, 'conflict')} recorded in steep_repl.merge_conflicts (merge ${s.merge_id}), each with both rows (row_a, row_b); resolve every one, e.g.`);
      say(`  UPDATE steep_repl.merge_conflicts SET resolution = 'a' WHERE merge_id = ${s.merge_id} AND resolution IS NULL;  -- 'a', 'b', or 'row' with resolved_row`);
      say(`then merge with them: ${command(s, '--apply')}`);
    }
  } else if (s.state === 'analyzed' && s.mode === 'analyze') {
    say(`see what a strategy would write: ${command(s, '--strategy prefer-a|prefer-b|last-modified --column <c>|manual --dry-run')}`);
  } else if (s.state === 'analyzed' && s.mode === 'dry_run') {
    say(`merge: ${command(s, `--strategy ${s.strategy}${s.options?.column ? ` --column ${shellWord(s.options.column)}` : ''}`)}`);
  } else if (s.state === 'differs') {
    say(`see what differs: steep-repl node status ${shellWord(s.node_b)}; ${mergedAdvice(s.node_b)}`, true);
  }
  return out;
}
