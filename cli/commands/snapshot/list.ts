import { Args } from '@oclif/core';
import { BaseCommand, jsonFlag } from '../../base-command';
import { bytes } from '../../../lib/format';
import { table } from '../../render';
import { onSnapshotNodes } from '../../snapshot-nodes';
import { listSnapshots, SnapshotOverview } from '../../../lib/sql/snapshots';

export default class SnapshotList extends BaseCommand<typeof SnapshotList> {
  static description =
    "List two-phase snapshots: id, source, state, consistent LSN, size, expiry, the WAL their slot retains on the source and its wal_status, " +
    'and the applies streaming through them. Read from steep_repl.snapshot_overview on the source given, else on every registered node that answers.';
  static examples = ['<%= config.bin %> snapshot list', '<%= config.bin %> snapshot list node_a --json'];
  static args = { source: Args.string({ description: 'only the snapshots generated on this node' }) };
  static flags = { json: jsonFlag };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SnapshotList);
    const { results, unreached } = await onSnapshotNodes(flags.db, args.source, 'steep-repl snapshot list', (client) => listSnapshots(client));
    for (const u of unreached) process.stderr.write(`warning: snapshots of node ${u.node_id} not listed: ${u.error}\n`);
    const rows = results.flatMap((r) => r.result);
    if (flags.json) return this.printJson(rows);
    if (rows.length === 0) {
      return this.log(`no snapshots${args.source ? ` of ${args.source}` : ''} (steep-repl snapshot generate <source> --output DIR)`);
    }
    this.log(
      table(
        ['SNAPSHOT', 'SOURCE', 'STATE', 'LSN', 'SIZE', 'EXPIRES', 'RETAINED WAL', 'WAL STATUS', 'APPLIES'],
        rows.map((s) => [
          s.snapshot_id,
          s.source_node_id,
          s.state,
          s.consistent_lsn ?? '-',
          sizeText(s),
          expiryText(s),
          s.retained_wal_bytes == null ? '-' : bytes(s.retained_wal_bytes),
          s.wal_status ?? '-',
          s.applies_in_flight ? String(s.applies_in_flight) : '-',
        ]),
      ).trimEnd(),
    );
    for (const s of rows.filter((r) => r.error)) this.log(`${s.snapshot_id}: ${s.error}`);
  }
}

// "4.1MB zstd (14.2MB raw)": what is on disk, how, and what it loads to.
function sizeText(s: SnapshotOverview): string {
  if (s.stored_bytes == null || (!s.stored_bytes && !s.parts)) return '-';
  return `${bytes(s.stored_bytes)} ${s.compression}${s.raw_bytes != null && s.compression !== 'none' ? ` (${bytes(s.raw_bytes)} raw)` : ''}`;
}

// "in 6d", "in 3h", "in 12m"; a snapshot past it or gone says so.
export function expiryText(s: Pick<SnapshotOverview, 'state' | 'expires_at'>, now = new Date()): string {
  if (s.state === 'expired') return 'expired';
  if (s.state === 'deleted' || s.state === 'failed') return '-';
  const seconds = Math.round((new Date(s.expires_at).getTime() - now.getTime()) / 1000);
  if (seconds <= 0) return 'due';
  if (seconds < 3600) return `in ${Math.max(1, Math.floor(seconds / 60))}m`;
  if (seconds < 86400) return `in ${Math.floor(seconds / 3600)}h`;
  return `in ${Math.floor(seconds / 86400)}d`;
}
