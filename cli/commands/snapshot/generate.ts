import { Args, Flags } from '@oclif/core';
import * as path from 'node:path';
import { BaseCommand, jsonFlag } from '../../base-command';
import { ExitCode } from '../../../lib/errors';
import { bytes, count, shellWord } from '../../../lib/format';
import { compressions } from '../../../lib/snapshot/manifest';
import { liveRenderer } from '../../init-follow';
import { warnIfNoAgent } from '../../init-start';
import { connectToNodeDatabase } from '../../node-connection';
import { deleteCommand, followSnapshot, ratio, snapshotLines } from '../../snapshot-follow';
import { expiresOption } from '../../snapshot-options';
import { generateSnapshot, SnapshotStatus } from '../../../lib/sql/snapshots';

export default class SnapshotGenerate extends BaseCommand<typeof SnapshotGenerate> {
  static description =
    "Write a two-phase snapshot of a source node to a directory: every replicated table at one instant (a slot's exported snapshot), " +
    'compressed, with manifest.json, schema.sql and sequences.json; follow it until it is ready. The source\'s agent writes the files, so ' +
    "--output is a directory on the source agent's machine (a relative one is made absolute here); it must not exist or be empty. " +
    'The snapshot keeps its slot (and the WAL from its point) until it expires or is deleted; load it with snapshot apply. ' +
    'Ctrl+C stops following; the generate goes on.';
  static examples = [
    '<%= config.bin %> snapshot generate node_a --output /srv/snapshots/app-1',
    '<%= config.bin %> snapshot generate node_a --output /srv/snapshots/app-1 --parallel 8 --compression zstd --large-table-threshold 1GB --expires 2d',
    '<%= config.bin %> snapshot generate node_a --output /srv/snapshots/app-1 --no-wait --json',
  ];
  static args = { source: Args.string({ description: 'source node to snapshot (its agent writes the files)', required: true }) };
  static flags = {
    output: Flags.string({
      char: 'o',
      description: "directory to write, on the source agent's machine (made absolute against the current directory here); must not exist or be empty",
      required: true,
    }),
    parallel: Flags.integer({ description: "the agent's copy sessions writing parts at once (1-16; default 4)" }),
    compression: Flags.string({
      description: "of the data files (default zstd): gzip is Node's zlib, zstd and lz4 the system commands on the agent's machine",
      options: compressions,
    }),
    'large-table-threshold': Flags.string({
      description: 'split a table whose heap plus TOAST is larger than this into parts written in parallel (bytes or a size like 64MB; at least 1MB; default 1GB)',
    }),
    'max-parts': Flags.integer({ description: 'at most this many parts per table (1-1024; default 32)' }),
    expires: Flags.string({
      description: "drop the snapshot's slot after this long: 7d, 12h, 30m, 2w, seconds, or interval text like '7 days' (1 minute to 1 year; default 7 days)",
    }),
    wait: Flags.boolean({ description: 'follow the generate until ready (--no-wait: queue it and return)', default: true, allowNo: true }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SnapshotGenerate);
    // Checked before connecting; generate_snapshot checks ranges and the directory's use.
    const options: Record<string, unknown> = {};
    if (flags.parallel !== undefined) options.parallel = flags.parallel;
    if (flags.compression !== undefined) options.compression = flags.compression;
    if (flags['large-table-threshold'] !== undefined) options.split_tables_larger_than = flags['large-table-threshold'];
    if (flags['max-parts'] !== undefined) options.max_parts = flags['max-parts'];
    if (flags.expires !== undefined) options.expires = expiresOption(flags.expires);
    const outputDir = path.resolve(flags.output);

    const { client, config } = await connectToNodeDatabase(flags.db, args.source, 'steep-repl snapshot generate');
    try {
      const started = await generateSnapshot(client, outputDir, options);
      const id = started.snapshot_id;
      if (!flags.wait) {
        if (flags.json) return this.printJson(started);
        this.log(`snapshot ${id} of ${args.source} queued as job ${started.job_id}: its agent writes ${started.output_dir}`);
        this.log(`see it: steep-repl snapshot list ${shellWord(args.source)}   delete it: ${deleteCommand(id, args.source)}`);
        return;
      }
      if (!flags.json) process.stderr.write(`generating snapshot ${id} of ${args.source} into ${started.output_dir} (on ${args.source}'s agent's machine)\n`);
      await warnIfNoAgent(client, args.source, 'the generate');
      const final = await this.follow(config, client, id, args.source);
      if (flags.json) this.printJson(final);
      process.exitCode = final.state === 'ready' ? ExitCode.ok : final.state === 'deleted' ? ExitCode.cancelled : ExitCode.error;
      if (final.state === 'ready') {
        if (!flags.json) this.log(describeReady(final));
      } else {
        process.stderr.write(`error: snapshot ${id} ${final.state}${final.error ? `: ${final.error}` : ''}\n${final.hint ? `hint: ${final.hint}\n` : ''}`);
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  // Ctrl+C stops following only: the generate is the source agent's job and
  // goes on; the message says how to see and how to delete it.
  private async follow(config: Parameters<typeof followSnapshot>[0], client: Parameters<typeof followSnapshot>[1], id: string, source: string): Promise<SnapshotStatus> {
    const renderer = liveRenderer(process.stderr, snapshotLines, (s: SnapshotStatus) => s.state);
    const following = followSnapshot(config, client, id, { render: (s) => renderer.render(s) });
    const onSignal = () => {
      renderer.end();
      process.stderr.write(
        `stopped following; snapshot ${id} goes on being written by ${source}'s agent.\n` +
          `see it:    steep-repl snapshot list ${shellWord(source)}\n` +
          `delete it: ${deleteCommand(id, source)}   (stops the generate, removes its files)\n`,
      );
      void following.stop().finally(() => process.exit(130));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      const final = await following.done;
      renderer.end();
      return final;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await following.stop();
    }
  }
}

function describeReady(s: SnapshotStatus): string {
  return [
    `snapshot ${s.snapshot_id} of ${s.source_node_id} is ready at LSN ${s.consistent_lsn}: ${s.tables_total} tables, ${s.parts_total} parts, ` +
      `${count(s.rows_written)} rows, ${bytes(s.bytes_written)} raw, ${bytes(s.bytes_stored)} stored (${ratio(s.bytes_written, s.bytes_stored)}, ${s.compression})`,
    `in ${s.output_dir} on ${s.source_node_id}'s agent's machine; its slot ${s.slot_name} keeps WAL until ${new Date(s.expires_at).toISOString()} (expiry) or delete`,
    `apply it: steep-repl snapshot apply <target> --input ${shellWord(s.output_dir)}   (or --snapshot ${s.snapshot_id} --from ${shellWord(s.source_node_id)})`,
  ].join('\n');
}
