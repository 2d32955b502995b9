// Follows one verify on its node until it has ended (followStatus: the
// agent's progress, {kind: 'verify', verify_id, ...} on steep_repl_progress,
// and its verify.* events; verify_status re-read on each), the live line,
// then the result as a DBA reads it.
import { Client, ClientConfig } from 'pg';
import { ExitCode, ExitCodeValue } from '../lib/errors';
import { count, percent, shellWord } from '../lib/format';
import { tableLabel } from '../lib/identifiers';
import { getVerifyStatus, VerifyStatus, VerifyTableStatusRow as VerifyTable } from '../lib/sql/getVerifyStatus';
import { table } from './render';
import { followStatus, StatusFollower } from './follow-status';

export const verifyEnded = (s: VerifyStatus): boolean => !['queued', 'running'].includes(s.state);

export function followVerify(
  config: ClientConfig,
  client: Client,
  verifyId: number,
  options: { render(s: VerifyStatus): void; pollMs?: number },
): StatusFollower<VerifyStatus> {
  return followStatus(config, client, {
    read: (reader) => getVerifyStatus(reader, verifyId),
    ended: verifyEnded,
    // progress carries verify_id, events carry it in their details
    matches: (payload) => {
      const p = payload as { verify_id?: unknown; details?: { verify_id?: unknown } } | null;
      return Number(p?.verify_id ?? p?.details?.verify_id) === verifyId;
    },
    ...options,
  });
}

export const labelOf = (t: VerifyTable): string => t.label ?? tableLabel(t);

// The table being worked on: the first one hashing, drilling or rechecking.
const currentTable = (s: VerifyStatus): VerifyTable | undefined =>
  (s.tables ?? []).find((t) => ['hashing', 'drilling', 'rechecking'].includes(t.status));

// "[########----------------]   40.2%  hashing  3/8 tables  public.orders  120k rows compared"
export function verifyLine(s: VerifyStatus, width = 24): string {
  const overall = Math.min(100, Math.max(0, Number(s.percent ?? 0)));
  const filled = Math.floor((overall / 100) * width);
  const parts = [
    `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`,
    percent(overall, 1).padStart(6),
    s.state === 'running' ? (s.phase ?? 'running') : s.state,
    `${s.tables_done ?? 0}/${s.tables_total ?? 0} tables`,
  ];
  const current = currentTable(s);
  // the table, and what it is at when that is not the run's phase
  if (s.state === 'running' && current) parts.push(current.status === s.phase ? labelOf(current) : `${labelOf(current)} ${current.status}`);
  if (Number(s.rows_compared)) parts.push(`${count(s.rows_compared)} rows compared`);
  return parts.join('  ');
}

// verify's exit codes (SPEC §4.8): 0 every table equal, 1 a table differs
// or stayed unsettled (or the run failed), 4 cancelled.
export function exitCodeForVerify(s: VerifyStatus): ExitCodeValue {
  if (s.state === 'equal') return ExitCode.ok;
  if (s.state === 'cancelled') return ExitCode.cancelled;
  return ExitCode.error;
}

// "{"id": 5}" for a key; a key of one column as its value.
export function keyText(key: unknown): string {
  if (key && typeof key === 'object' && !Array.isArray(key)) {
    const entries = Object.entries(key as Record<string, unknown>);
    return `(${entries.map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ')})`;
  }
  return JSON.stringify(key);
}

// The result for people: one line about the run, a table per table, then
// the differing keys of each table that differs and what to do next.
// merged: the node replicates both ways with its peer (node merge), which no reinit re-copies
export function describeVerify(s: VerifyStatus, nodeId: string, merged = false): string[] {
  const peer = s.peer_node_id ?? '?';
  const tables = s.tables ?? [];
  const differing = tables.filter((t) => t.status === 'differs');
  const unsettled = tables.filter((t) => t.status === 'unsettled' || Number(t.rows_unsettled) > 0);
  const lines: string[] = [];
  const head = `verify ${s.verify_id} of ${nodeId} against ${peer}`;
  switch (s.state) {
    case 'equal':
      lines.push(`${head}: equal (${tables.length} table${tables.length === 1 ? '' : 's'}, ${count(s.rows_compared)} rows compared)`);
      break;
    case 'differs':
      lines.push(`${head}: ${differing.length} of ${tables.length} table${tables.length === 1 ? '' : 's'} differ${differing.length === 1 ? 's' : ''}`);
      break;
    case 'unsettled':
      lines.push(`${head}: unsettled: rows kept changing on ${peer} through every recheck, so they could not be compared (not counted as divergence)`);
      break;
    case 'cancelled':
      lines.push(`${head}: cancelled; the node's state is unchanged`);
      break;
    case 'failed':
      lines.push(`${head}: failed: ${s.error ?? 'no reason recorded'}${s.hint ? `\nhint: ${s.hint}` : ''}`);
      break;
    default:
      lines.push(`${head}: ${s.state}`);
  }
  if (tables.length && s.state !== 'cancelled') {
    lines.push(
      table(
        ['TABLE', 'RESULT', 'MISSING', 'EXTRA', 'DIFFERENT', 'UNSETTLED', 'ROWS', 'NOTE'],
        tables.map((t) => [
          labelOf(t),
          t.status,
          t.rows_missing,
          t.rows_extra,
          t.rows_different,
          t.rows_unsettled,
          count(t.rows_compared),
          t.note ?? '',
        ]),
      ).trimEnd(),
    );
  }
  for (const t of [...differing, ...unsettled.filter((u) => !differing.includes(u))]) {
    const differences = t.differences?.length ? t.differences : (t.sample_keys ?? []).map((key) => ({ key, kind: null as string | null }));
    if (!differences.length) continue;
    const total = Number(t.rows_missing) + Number(t.rows_extra) + Number(t.rows_different) + Number(t.rows_unsettled);
    lines.push(`${labelOf(t)}:`);
    for (const d of differences) lines.push(`  ${d.kind ? `${d.kind.padEnd(9)} ` : ''}${keyText(d.key)}`);
    if (total > differences.length) lines.push(`  … ${total - differences.length} more (SELECT * FROM steep_repl.verify_differences WHERE verify_id = ${s.verify_id})`);
  }
  if (s.state === 'differs') {
    lines.push(
      merged
        ? `${nodeId} is diverged; it replicates both ways (merged), so a reinit is refused: mend these rows on one node and verify again`
        : `${nodeId} is diverged; re-copy what differs: steep-repl node reinit ${shellWord(nodeId)} --tables ${shellWord(differing.map(labelOf).join(','))}`,
    );
  }
  return lines;
}
