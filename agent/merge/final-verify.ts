// Step 6: every table verified the way node verify does (table-verify.ts:
// range hashes, then what differs rechecked against the lag), B against A
// over A → B's subscription, each recheck waiting until both directions
// applied past the other node's position (the pair writes both ways).
import { Client } from 'pg';
import { quoteIdent } from '../../lib/identifiers';
import type { MergeTableVerify } from '../../lib/sql/mergeStatus';
import type { MergeDivergence } from '../../lib/sql/mergeNodeFinish';
import { AppliedTarget, settleBothWays } from '../verify/applied';
import { verifyTable } from '../verify/table-verify';
import { PlannedTable } from './checks';
import { PairNames } from './names';

// differences kept per table (their counts are what a merge records)
const keyLimit = 100;

export interface VerifiedTable {
  p: PlannedTable;
  verify: MergeTableVerify;
  note: string | null;
}

export async function verifyMergedTables(input: {
  sessions: { a: Client; b: Client };
  names: PairNames;
  nodes: { a: string; b: string };
  tables: PlannedTable[];
  signal: AbortSignal;
  onTable(p: PlannedTable, share: number): Promise<void> | void;
  onVerified(v: VerifiedTable): Promise<void>;
}): Promise<VerifiedTable[]> {
  const a = { client: input.sessions.a, name: `node ${quoteIdent(input.nodes.a)}` };
  const b = { client: input.sessions.b, name: `node ${quoteIdent(input.nodes.b)}` };
  const toB: AppliedTarget = { peer: a, node: b, slot: input.names.ab, subscription: input.names.ab };
  const toA: AppliedTarget = { peer: b, node: a, slot: input.names.ba, subscription: input.names.ba };
  const settle = settleBothWays(toB, toA, input.signal);
  const out: VerifiedTable[] = [];
  for (const p of input.tables) {
    input.signal.throwIfAborted();
    await input.onTable(p, 0);
    const verdict = await verifyTable(toB, p.sql, p.shape, {
      keyLimit,
      signal: input.signal,
      note: p.note,
      settle,
      onStep: (_phase, _progress, share) => input.onTable(p, share),
      onPeerPosition: () => undefined,
    });
    const r = verdict.result;
    const v: VerifiedTable = {
      p,
      verify: { status: r.status, rows_missing: r.rows_missing, rows_extra: r.rows_extra, rows_different: r.rows_different, rows_unsettled: r.rows_unsettled },
      note: r.note ?? null,
    };
    await input.onVerified(v);
    out.push(v);
  }
  return out;
}

export const divergence = (verified: VerifiedTable[]): MergeDivergence[] =>
  verified
    .filter((v) => v.verify.status === 'differs')
    .map((v) => ({
      schema_name: v.p.table.schema_name,
      table_name: v.p.table.table_name,
      rows_missing: v.verify.rows_missing,
      rows_extra: v.verify.rows_extra,
      rows_different: v.verify.rows_different,
    }));
