import { Flags } from '@oclif/core';
import { BaseCommand } from '../base-command';
import { startDemo, startDemoInit, Demo } from '../demo/demo-cluster';
import { exitCodeForInit, followInit, initSettled, progressRenderer } from '../init-follow';
import { clientConfig, connectTo } from '../../lib/connection';
import { ExitCode, SteepError } from '../../lib/errors';
import { runLiveView } from '../../tui/app';
import { ClusterWatch } from '../../tui/cluster-watch';

export default class DemoCommand extends BaseCommand<typeof DemoCommand> {
  static description =
    'Two embedded PostgreSQL 18 nodes with sample data, node_b initializing from node_a, and the live view on it (npm start)';
  static examples = ['<%= config.bin %> demo', '<%= config.bin %> demo --scale 1000', '<%= config.bin %> demo --no-tui --exit-when-synchronized'];
  static flags = {
    scale: Flags.integer({ description: 'size of the sample data on node_a, in MB', default: 300, min: 1, max: 100000 }),
    tui: Flags.boolean({ description: 'open the live view (--no-tui prints state changes instead)', default: true, allowNo: true }),
    'exit-when-synchronized': Flags.boolean({
      description: 'with --no-tui: stop once node_b settles; exit code as node start --follow (0 synchronized)',
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(DemoCommand);
    if (flags['exit-when-synchronized'] && flags.tui) {
      throw new SteepError('--exit-when-synchronized goes with --no-tui', ExitCode.badArguments);
    }
    // Without a terminal (CI, a pipe) there is no screen to take: follow in plain lines.
    const liveView = flags.tui && Boolean(process.stdout.isTTY && process.stdin.isTTY);
    if (flags.tui && !liveView) this.log('not a terminal: following the initialization without the live view (Ctrl+C stops)');
    let demo: Demo | undefined;
    let interrupted = false;
    // Ctrl+C while the servers start: clean up instead of leaving them running.
    const onSignal = () => {
      interrupted = true;
      this.log('stopping…');
      void (demo?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    process.once('SIGHUP', onSignal);

    demo = await startDemo({ scaleMb: flags.scale, say: (text) => this.log(text) });
    if (interrupted) return;
    this.log(`sample data on node_a: ${(demo.sample.bytes / 1e6).toFixed(0)} MB, ${Math.round(demo.sample.rows)} rows`);
    this.log('');
    this.log(`node_a (source)  ${demo.source.url}`);
    this.log(`node_b (target)  ${demo.target.url}`);
    this.log(`agent logs       ${demo.runDir}`);
    this.log('');
    await startDemoInit(demo);
    this.log("started: SELECT steep_repl.start_init('node_b', 'node_a') on node_b");

    let exitCode: number = ExitCode.ok;
    // From here the live view or the follower handles the signals and returns.
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    try {
      if (liveView) {
        const watch = new ClusterWatch({ db: demo.target.url, applicationName: 'steep-repl demo tui' });
        await watch.start();
        await runLiveView({
          watch,
          focus: demo.target.id,
          footer: [`psql ${demo.source.url}   (node_a)`, `psql ${demo.target.url}   (node_b)`],
        });
      } else {
        exitCode = await this.follow(demo, flags['exit-when-synchronized']);
      }
    } finally {
      this.log('stopping the agents and servers…');
      await demo.stop();
      this.log(`stopped; removed ${demo.runDir}`);
    }
    process.exitCode = exitCode;
  }

  // Without the live view: the progress line of `node start --follow` until
  // the init settles (with --exit-when-synchronized) or a signal arrives.
  private async follow(demo: Demo, untilSettled: boolean): Promise<number> {
    const client = await connectTo(demo.target.url, 'steep-repl demo follow');
    const renderer = progressRenderer(process.stdout);
    const following = followInit(clientConfig(demo.target.url, 'steep-repl demo listen'), client, demo.target.id, {
      render: (status) => renderer.render(status),
      settled: untilSettled ? initSettled : () => false,
    });
    const signalled = new Promise<undefined>((resolve) => {
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => resolve(undefined));
    });
    try {
      const settled = await Promise.race([following.done, signalled]);
      renderer.end();
      if (!settled) return ExitCode.ok;
      this.log(`${demo.target.id}: ${settled.state}${settled.progress?.error ? ` (${settled.progress.error})` : ''}`);
      return exitCodeForInit(settled);
    } finally {
      await following.stop();
      await client.end().catch(() => undefined);
    }
  }
}
