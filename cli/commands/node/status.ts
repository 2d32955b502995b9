import { Args } from '@oclif/core';
import { BaseCommand, jsonFlag } from '../../base-command';
import { ExitCode, SteepError } from '../../../lib/errors';
import { ago } from '../../../lib/format';
import { getNode } from '../../../lib/sql/getNode';
import { getNodeOverview } from '../../../lib/sql/listNodes';
import { localNodeId } from '../../../lib/sql/localNodeId';
import { formatInit } from '../../node-format';

export default class NodeStatus extends BaseCommand<typeof NodeStatus> {
  static description = 'Show one node in detail, or the local node when no id is given';
  static examples = ['<%= config.bin %> node status', '<%= config.bin %> node status node_b --json'];
  static args = { id: Args.string({ description: 'node id (default: the local node)' }) };
  static flags = { json: jsonFlag };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeStatus);
    const node = await this.withClient(flags.db, async (client) => {
      const id = args.id ?? (await localNodeId(client));
      if (!id) throw new SteepError('no local node is registered in this database; name a node id', ExitCode.badArguments);
      // raises SR001 naming the registered nodes when the id is unknown
      await getNode(client, id);
      return (await getNodeOverview(client, id))!;
    });
    if (flags.json) return this.printJson(node);
    const lines: Array<[string, unknown]> = [
      ['node', `${node.node_id}${node.is_local ? ' (local)' : ''}`],
      ['name', node.node_name],
      ['address', `${node.host}:${node.port}/${node.dbname}${node.user_name ? ` as ${node.user_name}` : ''}`],
      ['priority', node.priority],
      ['health', `${node.health} (last seen ${ago(node.last_seen)})`],
      ['init state', node.init_state],
      ['init', formatInit(node)],
      ['source node', node.init_source_node ?? '-'],
      ['init started', node.init_started_at?.toISOString() ?? '-'],
      ['init completed', node.init_completed_at?.toISOString() ?? '-'],
    ];
    if (node.error) lines.push(['error', node.error]);
    for (const [label, value] of lines) this.log(`${label.padEnd(15)} ${value}`);
  }
}
