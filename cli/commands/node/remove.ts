import { Args } from '@oclif/core';
import { BaseCommand, jsonFlag } from '../../base-command';
import { removeNode } from '../../../lib/sql/removeNode';

export default class NodeRemove extends BaseCommand<typeof NodeRemove> {
  static description =
    'Remove a node from the registry of this database (refused while an initialization involves it: cancel that first)';
  static examples = ['<%= config.bin %> node remove node_b --db postgres://admin@db1/app'];
  static args = { id: Args.string({ description: 'node id', required: true }) };
  static flags = { json: jsonFlag };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeRemove);
    const node = await this.withClient(flags.db, (client) => removeNode(client, args.id));
    if (flags.json) this.printJson(node);
    else this.log(`removed node ${node.node_id}`);
  }
}
