import { Flags } from '@oclif/core';
import { BaseCommand } from '../base-command';
import { ExitCode, SteepError } from '../../lib/errors';
import { runLiveView } from '../../tui/app';
import { ClusterWatch } from '../../tui/cluster-watch';

export default class Tui extends BaseCommand<typeof Tui> {
  static description =
    'Live view of every registered node: state, lag, init progress with ETA, health; details, start and cancel of initializations';
  static examples = [
    '<%= config.bin %> tui --db postgres://admin@db1:5432/app',
    '<%= config.bin %> tui --db postgres://admin@db2:5432/app --node node_b',
  ];
  static flags = {
    node: Flags.string({ description: 'node selected at start' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Tui);
    if (!process.stdout.isTTY || !process.stdin.isTTY) {
      throw new SteepError('steep-repl tui needs an interactive terminal', ExitCode.badArguments, 'use steep-repl node list / node status for scripts');
    }
    const watch = new ClusterWatch({ db: flags.db });
    // Fails here, before the screen is taken, when the --db node cannot be read.
    await watch.start();
    if (flags.node !== undefined && !watch.node(flags.node)) {
      const known = watch.nodes().map((n) => n.id);
      await watch.stop();
      throw new SteepError(`unknown node ${JSON.stringify(flags.node)}`, ExitCode.badArguments,
        known.length ? `registered nodes: ${known.join(', ')}` : 'no node is registered; use steep-repl node register');
    }
    await runLiveView({ watch, focus: flags.node });
  }
}
