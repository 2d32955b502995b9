import { Queryable } from './queryable';

export interface SlotLag {
  slot_exists: boolean;
  active: boolean;
  current_lsn: string;
  confirmed_lsn: string | null;
  lag_bytes: number | null;
  // confirmed at or past the target LSN given
  reached: boolean;
}

// Run on the source (steep_repl.slot_lag: from the insert position).
export async function getSlotLag(source: Queryable, slotName: string, targetLsn?: string | null): Promise<SlotLag> {
  const { rows } = await source.query(
    `SELECT slot_exists, active, current_lsn::text, confirmed_lsn::text, lag_bytes::float8 AS lag_bytes, reached
     FROM steep_repl.slot_lag($1, $2)`,
    [slotName, targetLsn ?? null],
  );
  return rows[0];
}
