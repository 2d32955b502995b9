import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command';
import { ExitCode, SteepError } from '../../../lib/errors';
import { shellWord } from '../../../lib/format';
import { schemaSyncModes } from '../../../lib/schema-sync';
import { startInit } from '../../../lib/sql/startInit';
import { confirmSchemaManually, followToEnd, initFlags, initOptions, warnIfNoAgent } from '../../init-start';
import { connectToNodeDatabase } from '../../node-connection';

export default class NodeStart extends BaseCommand<typeof NodeStart> {
  static description =
    'Initialize a node from a source node and follow it until synchronized; Ctrl+C cancels it. The methods are the rows of ' +
    "the target's steep_repl.init_methods (SELECT * FROM steep_repl.init_methods); start_init refuses one not marked available.";
  static examples = [
    '<%= config.bin %> node start node_b --from node_a --db postgres://admin@db2/app',
    '<%= config.bin %> node start node_b --from node_a --parallel 4 --schema-sync auto --no-wait',
    '<%= config.bin %> node start node_b --from node_a --method direct --parallel 4 --large-table-threshold 1GB --max-parts 8',
    '<%= config.bin %> node start node_b --from node_a --resume',
  ];
  static args = { target: Args.string({ description: 'node to initialize (its database runs the init)', required: true }) };
  static flags = {
    from: Flags.string({ description: 'source node to copy from', required: true }),
    method: Flags.string({
      description: "an available method of steep_repl.init_methods (default snapshot; with --resume the failed init's)",
    }),
    parallel: Flags.integer({
      description:
        "copy workers (1-16). snapshot: table-sync workers (sets max_sync_workers_per_subscription on the target server); " +
        "direct: the agent's copy sessions (default 4)",
    }),
    'large-table-threshold': Flags.string({
      description: 'direct: split a table whose heap plus TOAST is larger than this into parts (bytes or a size like 64MB; at least 1MB; default 1GB)',
    }),
    'max-parts': Flags.integer({ description: 'direct: at most this many parts per table (1-1024; default 32)' }),
    'schema-sync': Flags.string({
      description: "schema check before the copy (default strict; with --resume the failed init's)",
      options: [...schemaSyncModes],
    }),
    resume: Flags.boolean({ description: 'resume a failed init from where it stopped' }),
    ...initFlags,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeStart);
    // Checked before connecting: a manual init waits for the DBA's own backup.
    if (flags.method === 'manual') {
      throw new SteepError(
        `method manual starts with steep-repl node prepare ${shellWord(args.target)} --from ${shellWord(flags.from)} --for pg_dump|pg_basebackup and ends with node complete`,
        ExitCode.badArguments,
        'see docs/manual-init.md',
      );
    }
    const options = initOptions(flags);
    // As typed: init_options reads sizes (pg_size_bytes) and checks every range,
    // and refuses both for a method that does not take them.
    if (flags['large-table-threshold'] !== undefined) options.split_tables_larger_than = flags['large-table-threshold'];
    if (flags['max-parts'] !== undefined) options.max_parts = flags['max-parts'];

    const { client, config } = await connectToNodeDatabase(flags.db, args.target, 'steep-repl node start');
    try {
      if (flags['schema-sync'] === 'manual' && !flags.resume) {
        await confirmSchemaManually(client, args.target, flags.from, flags.yes, 'steep-repl node start');
      }
      const started = await startInit(client, { target: args.target, source: flags.from, method: flags.method ?? null, options });
      if (!flags.wait) {
        if (flags.json) return this.printJson(started);
        this.log(`initialization of ${args.target} from ${flags.from} queued as job ${started.job_id}`);
        this.log(
          `follow it: steep-repl node progress ${shellWord(args.target)} --follow   cancel it: steep-repl node cancel ${shellWord(args.target)}`,
        );
        return;
      }
      await warnIfNoAgent(client, args.target);
      await followToEnd(config, client, args.target, flags.from, flags.json, (line) => this.log(line));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}
