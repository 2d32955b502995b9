import { Args, Flags } from '@oclif/core';
import { Client } from 'pg';
import { BaseCommand, jsonFlag } from '../../base-command';
import { ExitCode, SteepError } from '../../../lib/errors';
import { shellWord } from '../../../lib/format';
import { detachNode, DetachOutcome, getDetachOutcome, listReplicationObjects } from '../../../lib/sql/detachNode';
import { getNodeOverview } from '../../../lib/sql/listNodes';
import { confirmAction } from '../../confirm';
import { warnIfNoAgent } from '../../init-start';
import { connectToNodeDatabase } from '../../node-connection';

export default class NodeDetach extends BaseCommand<typeof NodeDetach> {
  static description =
    "Detach a node from replication: its agent removes the replication objects of every pair the node is in, on both sides " +
    '(the subscription on the target, the publication, slot and table-sync slots on the source, prepared slots), checks what is left ' +
    'and returns the node (and any node it fed) to uninitialized. Rows stay on every node. Asks first; --yes for scripts.';
  static examples = ['<%= config.bin %> node detach node_b', '<%= config.bin %> node detach node_b --yes --json'];
  static args = { node: Args.string({ description: 'node id', required: true }) };
  static flags = {
    yes: Flags.boolean({ char: 'y', description: 'detach without asking (for scripts)' }),
    'wait-timeout': Flags.integer({ description: 'seconds to wait for the agent to finish', default: 60, min: 1 }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeDetach);
    const { client } = await connectToNodeDatabase(flags.db, args.node, 'steep-repl node detach');
    try {
      if (!flags.yes) {
        const objects = await listReplicationObjects(client, args.node);
        const node = await getNodeOverview(client, args.node);
        const held = objects.length
          ? objects.map((o) => `  ${o.kind} ${o.name} (${o.direction === 'from' ? 'streams from' : 'for'} ${o.peer_node})`).join('\n')
          : '  (none in its own database; its peers are checked too)';
        process.stderr.write(`node ${args.node} is ${node?.init_state ?? 'unknown'}; its replication objects here:\n${held}\n`);
        const yes = await confirmAction(`detach ${args.node}: stop replicating and remove these and their counterparts on its peers?`);
        if (!yes) throw new SteepError(`detach of ${args.node} not confirmed; nothing changed`, ExitCode.cancelled, 'answer y, or pass --yes in scripts');
      }
      const request = await detachNode(client, args.node);
      // the agent runs the detach: an offline node's waits, which deserves a word
      await warnIfNoAgent(client, args.node, 'the detach');
      const { event, details } = await this.waitForOutcome(client, args.node, request.job_id, flags['wait-timeout']);
      if (event === 'node.detach_failed') {
        throw new SteepError(`detach of ${args.node} failed: ${details.error}`, ExitCode.error, details.hint);
      }
      if (flags.json) return this.printJson({ node_id: args.node, state: 'uninitialized', ...details });
      this.log(describeDetached(args.node, details));
      if (details.left.length || details.unreachable.length) process.exitCode = ExitCode.error;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  // The agent records the outcome as an event with the job's id.
  private async waitForOutcome(client: Client, nodeId: string, jobId: number, timeoutSeconds: number) {
    const deadline = Date.now() + timeoutSeconds * 1000;
    for (;;) {
      const outcome = await getDetachOutcome(client, nodeId, jobId);
      if (outcome) return outcome;
      if (Date.now() > deadline) {
        throw new SteepError(
          `the detach of ${nodeId} did not finish within ${timeoutSeconds} s; is its agent running?`,
          ExitCode.timeout,
          `it is queued as job ${jobId}; its outcome: SELECT details FROM steep_repl.audit_log WHERE event = 'node.detached' AND details ->> 'job_id' = '${jobId}'`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }
}

export function describeDetached(nodeId: string, d: DetachOutcome): string {
  const lines = [`detached node ${nodeId}: it is uninitialized and keeps its rows`];
  lines.push(d.removed.length ? `removed:\n${d.removed.map((r) => `  ${r}`).join('\n')}` : 'removed: nothing (there was nothing to remove)');
  if (d.detached_peers?.length) lines.push(`also uninitialized now (they streamed from ${nodeId}): ${d.detached_peers.join(', ')}`);
  lines.push(
    d.left.length
      ? `left (found by a check afterwards):\n${d.left.map((l) => `  ${l}`).join('\n')}`
      : `left: nothing (checked on ${d.checked.join(', ')})`,
  );
  for (const u of d.unreachable) lines.push(`not checked: node ${u.node_id} could not be reached (${u.error}); check ${u.check}`);
  if (!d.left.length && !d.unreachable.length) lines.push(`remove it now with: steep-repl node remove ${shellWord(nodeId)}`);
  return lines.join('\n');
}
