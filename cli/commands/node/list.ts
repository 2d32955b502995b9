import { BaseCommand, jsonFlag } from '../../base-command';
import { table } from '../../render';
import { formatInit } from '../../node-format';
import { ago } from '../../../lib/format';
import { listNodes } from '../../../lib/sql/listNodes';

export default class NodeList extends BaseCommand<typeof NodeList> {
  static description = 'List the registered nodes with their state and health (* marks the local node)';
  static examples = ['<%= config.bin %> node list --db postgres://admin@db1/app', '<%= config.bin %> node list --json'];
  static flags = { json: jsonFlag };

  async run(): Promise<void> {
    const { flags } = await this.parse(NodeList);
    const nodes = await this.withClient(flags.db, listNodes);
    if (flags.json) return this.printJson(nodes);
    if (nodes.length === 0) return this.log('no nodes registered (steep-repl node register <id> ...)');
    this.log(
      table(
        ['NODE', 'ADDRESS', 'STATE', 'INIT', 'HEALTH', 'LAST SEEN', 'PRIO'],
        nodes.map((n) => [
          n.is_local ? `${n.node_id} *` : n.node_id,
          `${n.host}:${n.port}/${n.dbname}`,
          n.init_state,
          formatInit(n),
          n.health,
          ago(n.last_seen),
          n.priority,
        ]),
      ).trimEnd(),
    );
  }
}
