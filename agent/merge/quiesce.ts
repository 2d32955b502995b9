// --quiesce: before the exchange commits, each node's slot is peeked (not
// consumed) for data changes to the merged tables since the merge point.
// The exchange's own writes are not committed yet, and carry the local
// origin that origin = none leaves out; steep_repl's own rows are in no
// publication. Any change left means the application wrote during the merge.
import { Client } from 'pg';

// pgoutput message types of data changes: Insert, Update, Delete, Truncate
const dataMessages = [73, 85, 68, 84];

export async function changesSinceMergePoint(session: Client, slot: string, publication: string): Promise<number> {
  const { rows } = await session.query(
    `SELECT count(*)::int8 AS n FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL,
       'proto_version', '1', 'publication_names', $2, 'origin', 'none')
     WHERE get_byte(data, 0) = ANY ($3::int[])`,
    [slot, publication, dataMessages],
  );
  return Number(rows[0].n);
}
