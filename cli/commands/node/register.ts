import { Args, Flags } from '@oclif/core';
import { BaseCommand, jsonFlag } from '../../base-command';
import { registerNode } from '../../../lib/sql/registerNode';

export default class NodeRegister extends BaseCommand<typeof NodeRegister> {
  static description = 'Register a node in the registry of the database given by --db';
  static examples = [
    '<%= config.bin %> node register node_a --host db1 --port 5432 --dbname app --local --db postgres://admin@db1/app',
    '<%= config.bin %> node register node_b --host db2 --dbname app --user replicator --priority 40',
  ];
  static args = { id: Args.string({ description: 'node id', required: true }) };
  static flags = {
    host: Flags.string({ description: 'host other nodes use to reach this node', required: true }),
    port: Flags.integer({ description: 'port (1-65535)', default: 5432 }),
    dbname: Flags.string({ description: 'database name', required: true }),
    user: Flags.string({ description: 'role to connect as (password from PGPASSWORD or pgpass, never stored)' }),
    priority: Flags.integer({ description: 'priority (1-100)', default: 50 }),
    name: Flags.string({ description: 'display name (default: the id)' }),
    local: Flags.boolean({ description: 'this node is the database given by --db' }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeRegister);
    const node = await this.withClient(flags.db, (client) =>
      registerNode(client, {
        node_id: args.id,
        host: flags.host,
        port: flags.port,
        dbname: flags.dbname,
        user: flags.user,
        priority: flags.priority,
        name: flags.name,
        is_local: flags.local,
      }),
    );
    if (flags.json) this.printJson(node);
    else this.log(`registered node ${node.node_id} (${node.host}:${node.port}/${node.dbname})${node.is_local ? ' as the local node' : ''}`);
  }
}
