import { BaseCommand, jsonFlag } from '../../base-command';
import { table } from '../../render';
import { formatInitOrVerify, stateText } from '../../node-format';
import { ago, bytes } from '../../../lib/format';
import { healthText, needsAttention, nodeLagBytes } from '../../../lib/health-format';
import { quoteIdent } from '../../../lib/identifiers';
import { listNodes } from '../../../lib/sql/listNodes';
import { manualSlotText, manualWaitText, readManualPrepare, waitsForBackup } from '../../manual-prepare';
import { withOwnHealth } from '../../peer-health';

export default class NodeList extends BaseCommand<typeof NodeList> {
  static description =
    'List the registered nodes with their state, lag and health (* marks the local node; the health of a peer as its own database has it), and under the table why each node that is not healthy is not; a diverged node shows how many tables differ, a running verify its percent, a merging node its peer (merge ↔ node_a 42%); a manual init waiting for its backup shows its prepared slot as the source sees it';
  static examples = ['<%= config.bin %> node list --db postgres://admin@db1/app', '<%= config.bin %> node list --json'];
  static flags = { json: jsonFlag };

  async run(): Promise<void> {
    const { flags } = await this.parse(NodeList);
    const { registry, manual } = await this.withClient(flags.db, async (client) => {
      const registry = await listNodes(client);
      // only the local node's init is read here: its method state and its source's slot
      const waiting = registry.find(waitsForBackup);
      return { registry, manual: waiting ? { nodeId: waiting.node_id, view: await readManualPrepare(client, waiting.node_id) } : undefined };
    });
    // each peer's health from its own database (the registry's row is its last probe's)
    const nodes = await withOwnHealth(registry, 'steep-repl node list');
    if (flags.json) return this.printJson(nodes.map((n) => (n.node_id === manual?.nodeId ? { ...n, manual: manual.view } : n)));
    if (nodes.length === 0) return this.log('no nodes registered (steep-repl node register <id> ...)');
    this.log(
      table(
        ['NODE', 'ADDRESS', 'STATE', 'INIT', 'LAG', 'HEALTH', 'LAST SEEN', 'PRIO'],
        nodes.map((n) => [
          n.is_local ? `${n.node_id} *` : n.node_id,
          `${n.host}:${n.port}/${n.dbname}`,
          stateText(n),
          n.node_id === manual?.nodeId ? `manual ${manual.view.backup ?? ''} from ${n.init_source_node}`.replace('  ', ' ') : formatInitOrVerify(n),
          // the watch's lag over the node's subscriptions, else the init's while one runs
          bytes(nodeLagBytes(n)),
          n.health,
          ago(n.last_seen),
          n.priority,
        ]),
      ).trimEnd(),
    );
    // and one whose own database could not tell: its health is the registry's, which the reason says
    for (const n of nodes.filter((n) => needsAttention(n) || n.health_from === 'registry')) this.log(`${quoteIdent(n.node_id)}: ${healthText(n)}`);
    if (manual) this.log(`${manual.nodeId}: ${manualWaitText(manual.view.backup)}; slot ${manualSlotText(manual.view)}`);
  }
}
