import { Args, Flags } from '@oclif/core';
import { Client, ClientConfig } from 'pg';
import { BaseCommand, jsonFlag } from '../../base-command';
import { shellWord } from '../../../lib/format';
import { warnIfNoAgent } from '../../init-start';
import { followWithCancel, liveRenderer } from '../../init-follow';
import { connectToNodeDatabase } from '../../node-connection';
import { cancelVerify } from '../../../lib/sql/cancelVerify';
import { getVerifyStatus, VerifyStatus } from '../../../lib/sql/getVerifyStatus';
import { startVerify } from '../../../lib/sql/startVerify';
import { getNodeOverview } from '../../../lib/sql/listNodes';
import { describeVerify, exitCodeForVerify, followVerify, verifyLine } from '../../verify-follow';
import { scopeFlags, verifyScope } from '../../verify-scope';

export default class NodeVerify extends BaseCommand<typeof NodeVerify> {
  static description =
    "Compare a node's tables with the peer it replicates from (hashes over key ranges on both nodes at once, drilling down only where they differ; " +
    'a difference counts only if it persists once the node has applied past the peer\'s position). Prints per table equal or differs with the rows ' +
    'missing, extra and different and their keys; a node with differences becomes diverged. Exit 0 equal, 1 differences or unsettled rows, ' +
    '4 cancelled (Ctrl+C cancels the verify), 6 a node cannot be reached.';
  static examples = [
    '<%= config.bin %> node verify node_b',
    '<%= config.bin %> node verify node_b --tables public.orders,\'sales."Line ""Items"""\'',
    '<%= config.bin %> node verify node_b --schema sales --key-limit 10000 --json',
    '<%= config.bin %> node verify node_b --from node_a --no-wait',
    '<%= config.bin %> node verify node_b --cancel',
  ];
  static args = { node: Args.string({ description: 'node to verify (its database runs the verify)', required: true }) };
  static flags = {
    from: Flags.string({ description: 'peer to compare with: a node this one subscribes from (default: its source)' }),
    ...scopeFlags,
    'key-limit': Flags.integer({
      description: 'differing keys kept per table in steep_repl.verify_differences (1-1000000; default 1000)',
      min: 1,
      max: 1_000_000,
    }),
    wait: Flags.boolean({ description: 'follow the verify until it ends (--no-wait: queue it and return)', default: true, allowNo: true }),
    cancel: Flags.boolean({ description: "cancel the node's running verify" }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeVerify);
    // Checked before connecting: nothing is started on bad arguments.
    const scope = verifyScope(flags);
    const { client, config } = await connectToNodeDatabase(flags.db, args.node, 'steep-repl node verify');
    try {
      if (flags.cancel) {
        const cancelled = await cancelVerify(client, args.node);
        if (flags.json) return this.printJson(cancelled);
        return this.log(`cancel of the verify of ${args.node} requested`);
      }
      const options = { ...scope, ...(flags['key-limit'] !== undefined ? { key_limit: flags['key-limit'] } : {}) };
      const started = await startVerify(client, { node: args.node, peer: flags.from ?? null, ...options });
      if (!flags.wait) {
        if (flags.json) return this.printJson(started);
        this.log(`verify ${started.verify_id} of ${args.node} against ${started.peer_node_id} queued as job ${started.job_id} (${started.tables.length} tables)`);
        this.log(`see it: steep-repl node status ${shellWord(args.node)}   cancel it: steep-repl node verify ${shellWord(args.node)} --cancel`);
        return;
      }
      await warnIfNoAgent(client, args.node, 'the verify');
      const n = started.tables.length;
      const header = flags.json ? undefined : `verifying ${args.node} against ${started.peer_node_id}: ${n} table${n === 1 ? '' : 's'} (verify ${started.verify_id})`;
      const final = await this.follow(config, client, args.node, started.verify_id, header);
      process.exitCode = exitCodeForVerify(final);
      if (flags.json) return this.printJson(final);
      const lines = describeVerify(final, args.node, (await getNodeOverview(client, args.node))?.method === 'merge');
      if (final.state === 'failed') process.stderr.write(`error: ${lines.join('\n')}\n`);
      else this.log(lines.join('\n'));
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  // Live on stderr until the verify ends; Ctrl+C asks the node to cancel it and keeps following.
  private async follow(config: ClientConfig, client: Client, nodeId: string, verifyId: number, header?: string): Promise<VerifyStatus> {
    const renderer = liveRenderer<VerifyStatus>(process.stderr, (s) => [verifyLine(s)], (s) => `${s.state} ${s.phase ?? ''}`);
    const following = followVerify(config, client, verifyId, { render: (s) => renderer.render(s) });
    const final = await followWithCancel(following, renderer, {
      nodeId,
      requestCancel: () => cancelVerify(client, nodeId),
      words: {
        subject: `the verify of ${nodeId}`,
        recorded: `the agent stops it; the node's state is unchanged. See it: steep-repl node status ${shellWord(nodeId)}`,
        cancelCommand: `steep-repl node verify ${shellWord(nodeId)} --cancel`,
      },
      exitCode: exitCodeForVerify,
      header,
    });
    // the status as it ended, differences included
    return getVerifyStatus(client, verifyId).catch(() => final);
  }
}
