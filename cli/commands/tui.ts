import { Flags } from '@oclif/core';
import { BaseCommand } from '../base-command';
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
    const watch = new ClusterWatch({ db: flags.db });
    // Fails here, before the screen is taken, when the --db node cannot be read.
    await watch.start();
    await runLiveView({ watch, focus: flags.node });
  }
}
