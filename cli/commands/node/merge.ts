import { Args, Flags } from '@oclif/core';
import { Client, ClientConfig } from 'pg';
import { BaseCommand, jsonFlag } from '../../base-command';
import { ExitCode, SteepError } from '../../../lib/errors';
import { shellWord } from '../../../lib/format';
import { cancelMerge } from '../../../lib/sql/cancelMerge';
import { getNode } from '../../../lib/sql/getNode';
import { MergeStatus, mergeStatus } from '../../../lib/sql/mergeStatus';
import { startMerge } from '../../../lib/sql/startMerge';
import { confirmAction } from '../../confirm';
import { warnIfNoAgent } from '../../init-start';
import { followWithCancel, liveRenderer } from '../../init-follow';
import { describeMerge, exitCodeForMerge, followMerge, mergeLine, runName } from '../../merge-follow';
import { MergeAsked, mergeFlags, mergeRequest, strategyText } from '../../merge-options';
import { connectToNodeDatabase } from '../../node-connection';

export default class NodeMerge extends BaseCommand<typeof NodeMerge> {
  static description =
    'Merge two nodes that both hold data into a pair replicating both ways, online: each node\'s merge point is a slot with its exported snapshot; ' +
    'rows only on one node are copied to the other, conflicts (same primary key, different row) decided by a strategy, then subscriptions both ' +
    'ways carry every later write and a final verify compares them. --analyze only counts (read-only); --strategy … --dry-run shows what would be ' +
    'written; --strategy manual records every conflict in steep_repl.merge_conflicts for you to resolve, then --apply merges with your ' +
    'resolutions. Runs on node A\'s database (its agent does the work). A merge asks first (--yes for scripts); Ctrl+C cancels (rows already ' +
    'exchanged stay). Exit 0 analyzed, recorded or merged, 1 failed or differs, 2 bad arguments, 3 the schemas differ, 4 cancelled, 5 timeout, 6 a node cannot be reached.';
  static examples = [
    '<%= config.bin %> node merge node_a node_b --analyze',
    '<%= config.bin %> node merge node_a node_b --analyze --tables public.orders,\'sales."Line ""Items"""\' --json',
    '<%= config.bin %> node merge node_a node_b --strategy last-modified --column updated_at --dry-run',
    '<%= config.bin %> node merge node_a node_b --strategy prefer-a --yes --timeout "2 hours"',
    '<%= config.bin %> node merge node_a node_b --strategy manual --schema sales',
    '<%= config.bin %> node merge node_a node_b --apply --quiesce --yes',
    '<%= config.bin %> node merge node_a node_b --cancel',
  ];
  static args = {
    'node-a': Args.string({ description: 'node A: its database holds the run and its agent does the work', required: true }),
    'node-b': Args.string({ description: 'node B, the node A merges with', required: true }),
  };
  static flags = {
    ...mergeFlags,
    wait: Flags.boolean({ description: 'follow the run until it ends (--no-wait: queue it and return)', default: true, allowNo: true }),
    cancel: Flags.boolean({ description: 'cancel the merge under way on node A' }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeMerge);
    const nodeA = args['node-a'];
    const nodeB = args['node-b'];
    // Checked before connecting: nothing is started on bad arguments.
    const asked = mergeRequest(nodeA, nodeB, flags);
    if (!('cancel' in asked) && asked.writes && !flags.yes && !process.stdin.isTTY) {
      throw new SteepError(`node merge writes on ${nodeA} and ${nodeB}: confirm it on a terminal, or pass --yes`, ExitCode.badArguments);
    }
    const { client, config } = await connectToNodeDatabase(flags.db, nodeA, 'steep-repl node merge');
    try {
      if ('cancel' in asked) {
        const cancelled = await cancelMerge(client, nodeA);
        if (flags.json) return this.printJson(cancelled);
        return this.log(
          cancelled.cancelled
            ? `merge ${cancelled.merge_id} of ${nodeA} cancelled before its job started; nothing changed`
            : `cancel of merge ${cancelled.merge_id} of ${nodeA} requested; the agent stops it within seconds and removes the replication it set up`,
        );
      }
      if (asked.writes && !flags.yes) await this.confirm(client, nodeA, nodeB, asked);
      const started = await startMerge(client, { nodeA, nodeB, ...asked.options });
      const id = started.merge_id;
      if (!flags.wait) {
        if (flags.json) return this.printJson(started);
        this.log(`${runName({ ...started, options: { column: asked.options.column } as MergeStatus['options'] })} queued as job ${started.job_id} (${started.tables.length} tables)`);
        this.log(`see it: steep-repl node status ${shellWord(nodeA)}   cancel it: steep-repl node merge ${shellWord(nodeA)} ${shellWord(nodeB)} --cancel`);
        return;
      }
      await warnIfNoAgent(client, nodeA, 'the merge');
      const n = started.tables.length;
      const doing = { analyze: 'analyzing', dry_run: 'dry run of merging', record: 'recording the conflicts of', merge: 'merging' }[started.mode];
      const header = flags.json ? undefined : `${doing} ${nodeA} and ${nodeB}: ${n} table${n === 1 ? '' : 's'} (merge ${id})`;
      const final = await this.follow(config, client, nodeA, nodeB, id, header);
      process.exitCode = exitCodeForMerge(final);
      if (flags.json) return this.printJson(final);
      for (const [line, toStderr] of describeMerge(final)) {
        if (toStderr) process.stderr.write(`${line}\n`);
        else this.log(line);
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  // Both nodes change: what the merge does, asked on the terminal. B's id is
  // checked first, so a typo is not answered for.
  private async confirm(client: Client, nodeA: string, nodeB: string, asked: MergeAsked): Promise<void> {
    await getNode(client, nodeB);
    const o = asked.options;
    const scope = o.tables ? `tables ${o.tables.join(', ')}` : o.schema !== undefined ? `the replicated tables of schema ${o.schema}` : `every replicated table of ${nodeA}`;
    const how = o.apply ? 'conflicts decided by your resolutions in steep_repl.merge_conflicts' : `conflicts decided by ${strategyText(o.strategy, nodeA, nodeB, o.column)}`;
    process.stderr.write(
      `merge of ${nodeA} and ${nodeB} (${scope}): rows only on one node are copied to the other and ${how}; ` +
        `then each replicates the other. Both nodes are written (see what first: --dry-run)\n`,
    );
    const yes = await confirmAction(`merge ${nodeA} and ${nodeB}?`);
    if (!yes) throw new SteepError(`merge of ${nodeA} and ${nodeB} not confirmed; nothing changed`, ExitCode.cancelled, 'answer y, or pass --yes in scripts');
  }

  // Live on stderr until the run ends; Ctrl+C asks node A to cancel it and keeps following.
  private async follow(config: ClientConfig, client: Client, nodeA: string, nodeB: string, mergeId: number, header?: string): Promise<MergeStatus> {
    const renderer = liveRenderer<MergeStatus>(process.stderr, (s) => [mergeLine(s)], (s) => `${s.state} ${s.phase ?? ''}`);
    const following = followMerge(config, client, mergeId, { render: (s) => renderer.render(s) });
    const final = await followWithCancel(following, renderer, {
      nodeId: nodeA,
      requestCancel: () => cancelMerge(client, nodeA),
      words: {
        subject: `merge ${mergeId} of ${nodeA} and ${nodeB}`,
        recorded: `the agent stops it and removes the replication it set up (rows already exchanged stay). See it: steep-repl node status ${shellWord(nodeA)}`,
        cancelCommand: `steep-repl node merge ${shellWord(nodeA)} ${shellWord(nodeB)} --cancel`,
      },
      exitCode: (s: MergeStatus) => exitCodeForMerge(s),
      header,
    });
    // the status as it ended, every table's counts included
    return mergeStatus(client, mergeId).catch(() => final);
  }
}
