import { Queryable } from './queryable';

// steep_repl.recovery_end(): where a restored base backup's recovery ended,
// from its newest timeline's history file. stop/stop_lsn only for an LSN
// target ('before LSN Y'); timeline 1: never promoted (the rest null).
export interface RecoveryEnd {
  in_recovery: boolean;
  timeline: number | null;
  parent_timeline: number | null;
  switchpoint: string | null;
  stop: 'before' | 'after' | null;
  stop_lsn: string | null;
  reason: string | null;
  // as text: a bigint
  system_identifier: string;
}

export async function recoveryEnd(db: Queryable): Promise<RecoveryEnd> {
  const { rows } = await db.query('SELECT steep_repl.recovery_end() AS r');
  return rows[0].r;
}
