import { Args, Flags } from '@oclif/core';
import { Client, ClientConfig } from 'pg';
import { BaseCommand, jsonFlag } from '../../base-command';
import { ExitCode, SteepError } from '../../../lib/errors';
import { shellWord } from '../../../lib/format';
import { cancelInit } from '../../../lib/sql/cancelInit';
import { InitStatus } from '../../../lib/sql/getInitStatus';
import { getNodeOverview } from '../../../lib/sql/listNodes';
import { confirmAction } from '../../confirm';
import { secondsOrInterval, warnIfNoAgent } from '../../init-start';
import { followInit, followWithCancel } from '../../init-follow';
import { connectToNodeDatabase } from '../../node-connection';
import { startReinit } from '../../../lib/sql/startReinit';
import { describeReinit, exitCodeForReinit, reinitRenderer } from '../../reinit-follow';
import { describeScope, reinitScope, scopeFlags } from '../../verify-scope';

export default class NodeReinit extends BaseCommand<typeof NodeReinit> {
  static description =
    'Empty chosen tables of a synchronized or diverged node and copy them again from its source while every other table keeps replicating ' +
    '(the truncate and the copy never reach another node), then verify them: synchronized when equal, diverged otherwise. --full re-copies ' +
    'every table with the node\'s configured method. Asks first (--yes for scripts); Ctrl+C cancels it: before the tables leave the publication ' +
    'nothing changes, after it they are fully re-copied. Exit 0 synchronized, 1 diverged or failed, 4 cancelled.';
  static examples = [
    '<%= config.bin %> node reinit node_b --tables public.orders,public.order_lines',
    '<%= config.bin %> node reinit node_b --tables \'sales."Line ""Items"""\' --yes',
    '<%= config.bin %> node reinit node_b --schema sales --yes --json',
    '<%= config.bin %> node reinit node_b --full --from node_a',
  ];
  static args = { node: Args.string({ description: 'node to re-copy into (its database runs the reinit)', required: true }) };
  static flags = {
    ...scopeFlags,
    full: Flags.boolean({ description: "re-copy every table with the node's configured method (its init's)" }),
    from: Flags.string({ description: "the node's source (default; another node is refused)" }),
    timeout: Flags.string({ description: 'fail the reinit if not done within this (seconds, or an interval like "2 hours")' }),
    yes: Flags.boolean({ char: 'y', description: 'proceed without asking (for scripts; required without a terminal)' }),
    wait: Flags.boolean({ description: 'follow the reinit until it ends (--no-wait: queue it and return)', default: true, allowNo: true }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeReinit);
    // Checked before connecting: nothing is started on bad arguments.
    const scope = reinitScope(flags);
    if (!flags.yes && !process.stdin.isTTY) {
      throw new SteepError(
        `node reinit empties ${describeScope(scope)} on ${args.node} and copies them again: confirm it on a terminal, or pass --yes`,
        ExitCode.badArguments,
      );
    }
    const options = {
      ...(flags.from !== undefined ? { from: flags.from } : {}),
      ...(flags.timeout !== undefined ? { timeout: secondsOrInterval(flags.timeout) } : {}),
    };
    const { client, config } = await connectToNodeDatabase(flags.db, args.node, 'steep-repl node reinit');
    try {
      if (!flags.yes) {
        const node = await getNodeOverview(client, args.node);
        const source = flags.from ?? node?.init_source_node ?? 'its source';
        const what = 'full' in scope ? `every table of ${args.node}, with its method ${node?.method ?? ''}`.trimEnd() : describeScope(scope);
        process.stderr.write(
          `node ${args.node} is ${node?.init_state ?? 'unknown'}; ${what} will be emptied on ${args.node} (not replicated) and copied again from ${source}` +
            `${'full' in scope ? '' : '; every other table keeps replicating'}\n`,
        );
        const yes = await confirmAction(`re-copy ${'full' in scope ? 'the whole node' : 'them'}?`);
        if (!yes) throw new SteepError(`reinit of ${args.node} not confirmed; nothing changed`, ExitCode.cancelled, 'answer y, or pass --yes in scripts');
      }
      const started = await startReinit(client, args.node, scope, options);
      if (!flags.wait) {
        if (flags.json) return this.printJson(started);
        this.log(`reinit of ${args.node} (${describeScope(scope)}) queued as job ${started.job_id}`);
        this.log(`follow it: steep-repl node progress ${shellWord(args.node)} --follow   cancel it: steep-repl node cancel ${shellWord(args.node)}`);
        return;
      }
      await warnIfNoAgent(client, args.node, 'the reinit');
      const final = await this.follow(config, client, args.node);
      const end = reinitEnd(final);
      process.exitCode = exitCodeForReinit(final, end.cancelled);
      if (flags.json) return this.printJson(final);
      const divergence = final.state === 'diverged' ? ((await getNodeOverview(client, args.node))?.divergence ?? []) : [];
      for (const [line, toStderr] of describeReinit(final, args.node, divergence, end)) {
        if (toStderr) process.stderr.write(`${line}\n`);
        else this.log(line);
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  // Live on stderr until the node leaves reinitializing; Ctrl+C asks the node to cancel.
  private async follow(config: ClientConfig, client: Client, nodeId: string): Promise<InitStatus> {
    const renderer = reinitRenderer(process.stderr);
    const following = followInit(config, client, nodeId, { render: (s) => renderer.render(s), onVerify: (v) => renderer.verify(v) });
    return followWithCancel(following, renderer, {
      nodeId,
      requestCancel: () => cancelInit(client, nodeId),
      words: {
        subject: `the reinit of ${nodeId}`,
        recorded:
          'the agent finishes it: before the tables left the publication nothing changes, after it they are fully re-copied. ' +
          `Watch it: steep-repl node progress ${shellWord(nodeId)} --follow`,
        cancelCommand: `steep-repl node cancel ${shellWord(nodeId)}`,
      },
      exitCode: exitCodeForReinit,
    });
  }
}

// Whether the DBA's cancel ended the reinit, and why one that failed did:
// finish_reinit records both on the reinit (reason, error, error_hint),
// also for a reinit that ended before it changed anything.
function reinitEnd(s: InitStatus): { cancelled: boolean; failure?: string } {
  const r = s.progress?.reinit;
  const cancelled = r?.reason === 'cancelled' || r?.outcome === 'cancelled';
  if (r?.reason !== 'failed' && r?.outcome !== 'failed') return { cancelled };
  const error = typeof r?.error === 'string' ? r.error : 'no reason recorded';
  return { cancelled, failure: `${error}${typeof r?.error_hint === 'string' ? ` (hint: ${r.error_hint})` : ''}` };
}
