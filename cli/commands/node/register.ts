import { Args, Errors, Flags } from '@oclif/core';
import { BaseCommand, jsonFlag } from '../../base-command';
import { ExitCode, SteepError } from '../../../lib/errors';
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
    port: wholeNumberFlag({ description: 'port (1-65535)', default: '5432' }),
    dbname: Flags.string({ description: 'database name', required: true }),
    user: Flags.string({ description: 'role to connect as (password from PGPASSWORD or pgpass, never stored)' }),
    priority: wholeNumberFlag({ description: 'priority (1-100)', default: '50' }),
    name: Flags.string({ description: 'display name (default: the id)' }),
    local: Flags.boolean({ description: 'this node is the database given by --db' }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeRegister);
    // Checked here as typed: a port past an integer would otherwise reach
    // PostgreSQL as a raw integer error (exit 1), not as a range (exit 2).
    const port = inRange('port', flags.port, 1, 65535, args.id);
    const priority = inRange('priority', flags.priority, 1, 100, args.id);
    const node = await this.withClient(flags.db, (client) =>
      registerNode(client, {
        node_id: args.id,
        host: flags.host,
        port,
        dbname: flags.dbname,
        user: flags.user,
        priority,
        name: flags.name,
        is_local: flags.local,
      }),
    );
    if (flags.json) this.printJson(node);
    else this.log(`registered node ${node.node_id} (${node.host}:${node.port}/${node.dbname})${node.is_local ? ' as the local node' : ''}`);
  }
}

// A whole number kept as typed, so a message can repeat it exactly.
function wholeNumberFlag(options: { description: string; default: string }) {
  return Flags.custom<string>({
    ...options,
    parse: async (input) => {
      if (!/^\s*[+-]?\d+\s*$/.test(input)) throw new Errors.CLIError(`Expected an integer but received: ${input}`);
      return input.trim();
    },
  })();
}

function inRange(what: string, text: string, min: number, max: number, nodeId: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new SteepError(`${what} ${text} of node ${nodeId} is outside ${min}-${max}`, ExitCode.badArguments);
  }
  return value;
}
