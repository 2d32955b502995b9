import { Args, Flags } from '@oclif/core';
import { Client } from 'pg';
import { BaseCommand, jsonFlag } from '../../base-command';
import { ExitCode, SteepError } from '../../../lib/errors';
import { cancelInit } from '../../../lib/sql/cancelInit';
import { cancelManualPrepare, ManualPrepareCancelled } from '../../../lib/sql/cancelManualPrepare';
import { getLeftBehind } from '../../../lib/sql/getLeftBehind';
import { localNodeId } from '../../../lib/sql/localNodeId';
import { describeCancelled, followInit } from '../../init-follow';
import { connectToNodeDatabase } from '../../node-connection';

export default class NodeCancel extends BaseCommand<typeof NodeCancel> {
  static description =
    "Cancel a node's initialization: the agent stops it, removes the subscription, its slot and the publication, empties what was copied (without replicating that) and returns the node to uninitialized. " +
    "A manual init's prepare goes with it (the slot, the publication and node prepare's snapshot holder on the source); a pg_basebackup prepare whose copy " +
    'was not completed is cancelled on the source (--db of the source). A merge (node merge) is cancelled from either node: its subscriptions, slots and ' +
    'publications go on both nodes, both return to uninitialized, and the rows it already exchanged stay.';
  static examples = [
    '<%= config.bin %> node cancel node_b',
    '<%= config.bin %> node cancel node_b --no-wait',
    '<%= config.bin %> node cancel node_b --db postgres://admin@db1/app   # a pg_basebackup prepare, on the source',
  ];
  static args = { node: Args.string({ description: 'node id', required: true }) };
  static flags = {
    wait: Flags.boolean({ description: 'wait until the cleanup is done', default: true, allowNo: true }),
    'wait-timeout': Flags.integer({ description: 'seconds to wait for the cleanup', default: 60, min: 1 }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeCancel);
    // A base backup's prepare lives on the source only (the target does not exist before complete).
    const prepare = await this.withClient(flags.db, (client) => cancelCopyPrepare(client, args.node));
    if (prepare) {
      if (flags.json) return this.printJson({ node_id: args.node, cancelled: true, prepare });
      return this.log(
        `the pg_basebackup prepare for ${args.node} was cancelled: slot ${prepare.slot_name}${prepare.slot_dropped ? ' dropped' : ' (already gone)'}` +
          `${prepare.publication ? `, publication ${prepare.publication}${prepare.publication_dropped ? ' dropped' : ' kept (in use)'}` : ''}; a copy restored for it cannot be completed`,
      );
    }
    const { client, config } = await connectToNodeDatabase(flags.db, args.node, 'steep-repl node cancel');
    try {
      const request = await cancelInit(client, args.node);
      // a merge (cancel_init hands it to cancel_merge), from either node
      const merge = request.merge_id;
      const what = merge ? `merge ${merge} of ${args.node}` : `initialization of ${args.node}`;
      if (!flags.wait || request.cancelled) {
        if (flags.json) return this.printJson(request);
        if (request.cancelled) return this.log(`${what} cancelled`);
        return this.log(`cancel of ${what} requested (${request.coordinator ? `the agent of node ${request.coordinator} stops it` : `job ${request.job_id}`})`);
      }
      const following = followInit(config, client, args.node, { render: () => undefined, settled: (s) => s.state === 'uninitialized' });
      const final = await Promise.race([
        following.done,
        new Promise<never>((_, reject) =>
          setTimeout(
            () => reject(new SteepError(`the cancel of ${args.node} did not finish within ${flags['wait-timeout']} s; is its agent running?`, ExitCode.timeout)),
            flags['wait-timeout'] * 1000,
          ).unref(),
        ),
      ]).finally(() => following.stop());
      if (merge) {
        if (flags.json) return this.printJson({ ...request, cancelled: true, state: final.state });
        return this.log(`${what} cancelled: ${args.node} is ${final.state}; the rows the merge already exchanged stay`);
      }
      const left = await getLeftBehind(client, args.node);
      if (flags.json) {
        return this.printJson({ ...request, cancelled: true, state: final.state, left_on_source: left.on_source, left_on_target: left.on_target, source_checked: left.source_checked });
      }
      this.log(describeCancelled(args.node, left));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

// This database is not the node, but holds the pg_basebackup prepare for it.
async function cancelCopyPrepare(client: Client, nodeId: string): Promise<ManualPrepareCancelled | undefined> {
  if ((await localNodeId(client)) === nodeId) return undefined;
  const { rows } = await client.query(
    "SELECT 1 FROM steep_repl.init_slots WHERE for_node = $1 AND purpose = 'manual' AND backup = 'pg_basebackup'",
    [nodeId],
  );
  return rows.length ? cancelManualPrepare(client, nodeId) : undefined;
}
