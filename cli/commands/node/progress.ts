import { Args, Flags } from '@oclif/core';
import { BaseCommand, jsonFlag } from '../../base-command';
import { table } from '../../render';
import { bytes, count, duration, percent } from '../../../lib/format';
import { getInitStatus, InitStatus } from '../../../lib/sql/getInitStatus';
import { exitCodeForInit, followInit, partTable, progressLine, progressLines } from '../../init-follow';
import { connectToNodeDatabase } from '../../node-connection';

export default class NodeProgress extends BaseCommand<typeof NodeProgress> {
  static description =
    "Show a node's initialization: phase, overall and per-table progress (and per part for direct and two-phase), rates, ETA; --follow until it settles";
  static examples = ['<%= config.bin %> node progress node_b', '<%= config.bin %> node progress node_b --follow --json'];
  static args = { node: Args.string({ description: 'node id', required: true }) };
  static flags = {
    follow: Flags.boolean({ description: 'keep showing updates until the init is synchronized, failed or cancelled' }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeProgress);
    const { client, config } = await connectToNodeDatabase(flags.db, args.node, 'steep-repl node progress');
    try {
      if (!flags.follow) {
        const status = await getInitStatus(client, args.node);
        if (flags.json) return this.printJson(status);
        return this.log(describe(status));
      }
      // --json --follow: one JSON status per line, for scripts.
      const following = followInit(config, client, args.node, {
        render: (s) => (flags.json ? process.stdout.write(`${JSON.stringify(s)}\n`) : this.log(progressLines(s).join('\n'))),
      });
      const stop = () => void following.stop().then(() => process.exit(0));
      process.once('SIGINT', stop);
      // Also when following fails: a listener left open would keep retrying and the process alive.
      const final = await following.done.finally(() => following.stop());
      if (!flags.json) this.log(describe(final));
      process.exitCode = final.state === 'uninitialized' ? 0 : exitCodeForInit(final);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

function describe(s: InitStatus): string {
  const p = s.progress;
  const lines = [`node ${s.node_id}: ${s.state}${s.source_node_id ? ` from ${s.source_node_id}` : ''}`];
  if (!p) return `${lines[0]} (no initialization recorded)`;
  lines.push(progressLine(s));
  if (p.error) lines.push(`error: ${p.error}`);
  if (p.not_replicated?.length) lines.push(`not replicated: ${p.not_replicated.map((r) => `${r.label} (${r.reason})`).join(', ')}`);
  if (p.lag_bytes != null) lines.push(`lag: ${bytes(p.lag_bytes)}`);
  if (s.parts) lines.push(describeParts(s.parts, p.method === 'two-phase' ? 'loading' : 'copying'));
  if (s.tables.length) {
    lines.push(
      table(
        ['table', 'state', 'percent', 'rows', 'bytes', 'rows/s', 'took'],
        s.tables.map((t) => [
          t.label,
          t.state,
          percent(t.percent, 1),
          `${count(t.rows_copied)}/${t.rows_total == null ? '?' : count(t.rows_total)}`,
          t.bytes_total == null ? '' : bytes(t.bytes_total),
          t.rows_per_second == null ? '' : count(t.rows_per_second),
          t.completed_at ? duration(t.seconds) : '',
        ]),
      ).trimEnd(),
    );
  }
  return lines.join('\n');
}

// direct, two-phase: parts done/total, and the ones being copied (loaded) now, one per worker.
function describeParts(parts: NonNullable<InitStatus['parts']>, doing: string): string {
  const notes = [parts.resync ? `${parts.resync} left to PostgreSQL's table sync` : '', parts.copied_twice ? `${parts.copied_twice} copied again after a cut-off copy` : '']
    .filter(Boolean)
    .join(', ');
  const head = `parts: ${parts.done}/${parts.total} done${notes ? ` (${notes})` : ''}`;
  if (!parts.active.length) return head;
  return [
    head,
    table(
      ['worker', doing, 'part', 'split', 'percent', 'rows', 'bytes', 'rows/s'],
      parts.active.map((a) => [
        a.worker ?? '?',
        partTable(a),
        `${a.part_no}/${a.part_count}`,
        a.split,
        percent(a.percent, 1),
        `${count(a.rows_copied)}/${count(a.rows_estimate)}`,
        bytes(a.bytes_copied),
        a.rows_per_second == null ? '' : count(a.rows_per_second),
      ]),
    ).trimEnd(),
  ].join('\n');
}
