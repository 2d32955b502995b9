import { Args } from '@oclif/core';
import { BaseCommand, jsonFlag } from '../../base-command';
import { ExitCode, SteepError } from '../../../lib/errors';
import { ago, bytes } from '../../../lib/format';
import { healthText } from '../../../lib/health-format';
import { getNode } from '../../../lib/sql/getNode';
import { getNodeOverview } from '../../../lib/sql/listNodes';
import { listPreparedSlots } from '../../../lib/sql/listPreparedSlots';
import { localNodeId } from '../../../lib/sql/localNodeId';
import { divergenceLines, formatInit, mergeLines, replicationStatusLines } from '../../node-format';
import { manualSlotText, manualWaitText, preparedSlotAdvice, preparedSlotText, readManualPrepare, waitsForBackup } from '../../manual-prepare';
import { ownHealth } from '../../peer-health';

// WAL kept by a prepared slot above this is warned about (STEEP_REPL_SLOT_WARN_BYTES, 1 GiB).
const retentionWarningBytes = Number(process.env.STEEP_REPL_SLOT_WARN_BYTES ?? 1024 ** 3);

export default class NodeStatus extends BaseCommand<typeof NodeStatus> {
  static description =
    'Show one node in detail, or the local node when no id is given: its health with the reason (for a peer, as its own database has it), its lag and each subscription and slot its agent watches, its init, the tables a verify found different (diverged), its last verify, a reinit under way, a merge under way and its last merge';
  static examples = ['<%= config.bin %> node status', '<%= config.bin %> node status node_b --json'];
  static args = { id: Args.string({ description: 'node id (default: the local node)' }) };
  static flags = { json: jsonFlag };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeStatus);
    const { node: registry, slots, manual, local } = await this.withClient(flags.db, async (client) => {
      const local = await localNodeId(client);
      const id = args.id ?? local;
      if (!id) throw new SteepError('no local node is registered in this database; name a node id', ExitCode.badArguments);
      // raises SR001 naming the registered nodes when the id is unknown
      await getNode(client, id);
      const overview = (await getNodeOverview(client, id))!;
      return {
        node: overview,
        // the local node's prepared slots; for a peer, those held here for it (a base backup's prepare)
        slots: (await listPreparedSlots(client)).filter((s) => overview.is_local || s.for_node === id),
        manual: waitsForBackup(overview) ? await readManualPrepare(client, id) : undefined,
        local,
      };
    });
    // a peer's health from its own database (the registry's row is its last probe's)
    const node = await ownHealth(registry, 'steep-repl node status');
    if (flags.json) return this.printJson({ ...node, ...(manual ? { manual } : {}), prepared: slots });
    const lines: Array<[string, unknown]> = [
      ['node', `${node.node_id}${node.is_local ? ' (local)' : ''}`],
      ['name', node.node_name],
      ['address', `${node.host}:${node.port}/${node.dbname}${node.user_name ? ` as ${node.user_name}` : ''}`],
      ['priority', node.priority],
      ['health', `${healthText(node)} (last seen ${ago(node.last_seen)})`],
      // the node's lag, each subscription and slot its agent watches (as its own database has them)
      ...replicationStatusLines(node),
      ['init state', node.init_state],
      ['init', manual ? manualWaitText(manual.backup) : formatInit(node)],
      ['source node', node.init_source_node ?? '-'],
      ['init started', node.init_started_at?.toISOString() ?? '-'],
      ['init completed', node.init_completed_at?.toISOString() ?? '-'],
    ];
    if (node.error) lines.push(['error', node.error]);
    // what a verify found that persists, the newest verify, a reinit under way
    lines.push(...divergenceLines(node));
    // a merge under way on the node, and its newest merge run
    lines.push(...mergeLines(node));
    // the manual init's slot, as its source sees it now
    if (manual) lines.push(['manual slot', manualSlotText(manual)]);
    // A prepared slot keeps WAL on this server until an init uses it or it expires.
    for (const slot of slots) lines.push(['prepared slot', `${slot.slot_name} for ${slot.for_node} ${preparedSlotText(slot)}`]);
    for (const [label, value] of lines) this.log(`${label.padEnd(15)} ${value}`);
    for (const slot of slots.filter((s) => Number(s.retained_bytes ?? 0) >= retentionWarningBytes)) {
      this.warn(
        `prepared slot ${slot.slot_name} retains ${bytes(slot.retained_bytes)} of WAL on this server; ${preparedSlotAdvice(slot, local ?? 'this node')}`,
      );
    }
  }
}
