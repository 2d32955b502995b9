import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command';
import { ExitCode, SteepError } from '../../../lib/errors';
import { bytes, shellWord } from '../../../lib/format';
import { schemaSyncModes } from '../../../lib/schema-sync';
import { getInitStatus } from '../../../lib/sql/getInitStatus';
import { startInit } from '../../../lib/sql/startInit';
import { confirmSchemaManually, followToEnd, initFlags, initOptions, warnIfNoAgent } from '../../init-start';
import { connectToNodeDatabase } from '../../node-connection';
import { describeInput, readSnapshotInput, SnapshotInput } from '../../snapshot-input';

export default class SnapshotApply extends BaseCommand<typeof SnapshotApply> {
  static description =
    "Initialize a node from a two-phase snapshot (the init method two-phase) and follow it until synchronized; Ctrl+C cancels it. " +
    "The target's agent reads --input on its own machine and checks the manifest and every file before anything changes, loads the parts " +
    "in parallel, then streams from a copy of the snapshot's slot on the source, so one snapshot serves several targets. " +
    'The source is read from DIR/manifest.json when the directory is here too; --from names it otherwise (and always with --snapshot ID).';
  static examples = [
    '<%= config.bin %> snapshot apply node_b --input /srv/snapshots/app-1',
    '<%= config.bin %> snapshot apply node_b --snapshot snap_20250101_120000_ab12 --from node_a --parallel 8',
    '<%= config.bin %> snapshot apply node_b --input /mnt/nfs/app-1 --from node_a --schema-sync auto --no-wait --json',
    '<%= config.bin %> snapshot apply node_b --resume',
  ];
  static args = { target: Args.string({ description: 'node to initialize (its database runs the init, its agent reads the files)', required: true }) };
  static flags = {
    input: Flags.string({
      char: 'i',
      description: "the snapshot's directory on the target agent's machine (made absolute against the current directory here)",
      exclusive: ['snapshot'],
    }),
    snapshot: Flags.string({ description: "the snapshot's id (snapshot list): its directory as the source recorded it; needs --from", exclusive: ['input'] }),
    from: Flags.string({ description: "source node the snapshot was generated on (default: the manifest's)" }),
    parallel: Flags.integer({ description: "the agent's load sessions (1-16; default 4)" }),
    'schema-sync': Flags.string({
      description: "schema check before the load (default strict; with --resume the failed init's)",
      options: [...schemaSyncModes],
    }),
    resume: Flags.boolean({ description: 'resume a failed apply: parts already loaded and verified are kept' }),
    ...initFlags,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SnapshotApply);
    if (flags.input === undefined && flags.snapshot === undefined && !flags.resume) {
      throw new SteepError('snapshot apply needs --input DIR or --snapshot ID', ExitCode.badArguments,
        'the directory snapshot generate wrote (--input), or its id from snapshot list with --from <source>');
    }
    if (flags.snapshot !== undefined && flags.from === undefined) {
      throw new SteepError('--snapshot needs --from <source>: the id is looked up in the source\'s snapshots', ExitCode.badArguments,
        'steep-repl snapshot list shows each snapshot with its source');
    }
    const input: SnapshotInput | undefined = flags.input === undefined ? undefined : readSnapshotInput(flags.input, flags.from);
    const manifestSource = input?.manifest?.source.node_id;
    if (flags.from !== undefined && manifestSource !== undefined && manifestSource !== flags.from) {
      process.stderr.write(`warning: ${input!.dir}/manifest.json names source ${manifestSource}; applying from ${flags.from} as --from says (the agent checks the source's identity)\n`);
    }

    const options = initOptions(flags);
    if (input) options.snapshot = input.dir;
    if (flags.snapshot !== undefined) options.snapshot = flags.snapshot;

    const { client, config } = await connectToNodeDatabase(flags.db, args.target, 'steep-repl snapshot apply');
    try {
      // --resume alone: the source of the failed init
      const source = flags.from ?? manifestSource ?? (await getInitStatus(client, args.target)).source_node_id;
      if (!source) {
        throw new SteepError(`no source for ${args.target}: it has no failed initialization to resume`, ExitCode.badArguments, 'give --input DIR or --snapshot ID --from <source>');
      }
      if (flags['schema-sync'] === 'manual' && !flags.resume) {
        await confirmSchemaManually(client, args.target, source, flags.yes, 'steep-repl snapshot apply');
      }
      const started = await startInit(client, { target: args.target, source, method: 'two-phase', options });
      const what = input ? describeInput(input, bytes) : flags.snapshot ? `snapshot ${flags.snapshot} of ${source}` : `the snapshot of the failed init`;
      if (!flags.wait) {
        if (flags.json) return this.printJson(started);
        this.log(`two-phase initialization of ${args.target} from ${source} queued as job ${started.job_id}: ${what}`);
        this.log(
          `follow it: steep-repl node progress ${shellWord(args.target)} --follow   cancel it: steep-repl node cancel ${shellWord(args.target)}`,
        );
        return;
      }
      if (!flags.json) process.stderr.write(`applying ${what} to ${args.target}\n`);
      await warnIfNoAgent(client, args.target);
      await followToEnd(config, client, args.target, source, flags.json, (line) => this.log(line));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}
