import { Args, Flags } from '@oclif/core';
import { Client } from 'pg';
import { BaseCommand, jsonFlag } from '../../base-command';
import { ExitCode, SteepError } from '../../../lib/errors';
import { bytes, shellWord } from '../../../lib/format';
import { confirmAction } from '../../confirm';
import { connectToNodeDatabase } from '../../node-connection';
import { onSnapshotNodes } from '../../snapshot-nodes';
import { deleteSnapshot, listSnapshots, SnapshotOverview } from '../../../lib/sql/snapshots';

export default class SnapshotDelete extends BaseCommand<typeof SnapshotDelete> {
  static description =
    "Delete a two-phase snapshot on its source: a generate still running is stopped, the slot is dropped (and the publication, unless an " +
    "apply still streams through it), and the source's agent removes the files the snapshot wrote (nothing else in the directory). " +
    'Asks first; --yes for scripts. Without --node the registered nodes are searched for the id.';
  static examples = ['<%= config.bin %> snapshot delete snap_20250101_120000_ab12', '<%= config.bin %> snapshot delete snap_20250101_120000_ab12 --node node_a --yes --json'];
  static args = { id: Args.string({ description: 'snapshot id (snapshot list)', required: true }) };
  static flags = {
    node: Flags.string({ description: 'the source node the snapshot was generated on (default: search the registered nodes)' }),
    yes: Flags.boolean({ char: 'y', description: 'delete without asking (for scripts)' }),
    'wait-timeout': Flags.integer({ description: "seconds to wait for the source's agent to remove the files", default: 60, min: 0 }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SnapshotDelete);
    const id = args.id;
    const found = await this.find(flags.db, id, flags.node);
    const { client } = await connectToNodeDatabase(flags.db, found.source_node_id, 'steep-repl snapshot delete');
    try {
      if (!flags.yes) {
        process.stderr.write(`${describe(found)}\n`);
        const yes = await confirmAction(`delete snapshot ${id}: drop its slot and remove its files?`);
        if (!yes) throw new SteepError(`delete of snapshot ${id} not confirmed; nothing changed`, ExitCode.cancelled, 'answer y, or pass --yes in scripts');
      }
      const result = await deleteSnapshot(client, id);
      const jobId = result.remove_files_job_id as number | undefined;
      const removal = jobId != null && flags['wait-timeout'] > 0 ? await this.waitForJob(client, jobId, flags['wait-timeout']) : 'not waited';
      if (removal === 'failed') process.exitCode = ExitCode.error;
      if (flags.json) return this.printJson({ ...result, files: removal });
      this.log(`snapshot ${id} of ${found.source_node_id} deleted: its slot is dropped`);
      if (result.note) this.log(String(result.note));
      if (removal === 'removed') this.log(`its files in ${found.output_dir} are removed (on ${found.source_node_id}'s agent's machine)`);
      else if (removal === 'failed') {
        process.stderr.write(`error: the agent of ${found.source_node_id} has not managed to remove the files in ${found.output_dir}; see its log (snapshot_remove_files)\n`);
        process.exitCode = ExitCode.error;
      }
      else if (jobId != null) this.log(`the agent of ${found.source_node_id} removes its files in ${found.output_dir} (job ${jobId})`);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private async find(db: string | undefined, id: string, nodeId: string | undefined): Promise<SnapshotOverview> {
    const { results, unreached } = await onSnapshotNodes(db, nodeId, 'steep-repl snapshot delete', (client) => listSnapshots(client));
    const found = results.flatMap((r) => r.result).find((s) => s.snapshot_id === id);
    if (found) return found;
    const notAsked = unreached.map((u) => `${u.node_id} (${u.error})`).join(', ');
    throw new SteepError(
      `unknown snapshot ${JSON.stringify(id)}${nodeId ? ` on node ${nodeId}` : ''}`,
      ExitCode.badArguments,
      `steep-repl snapshot list${nodeId ? ` ${shellWord(nodeId)}` : ''} shows the snapshots${notAsked ? `; not reached: ${notAsked}` : ''}`,
    );
  }

  // The removal is a job of the source's agent: done once it left the
  // queue; a job that keeps failing stays there with its error.
  private async waitForJob(client: Client, jobId: number, timeoutSeconds: number): Promise<'removed' | 'failed' | 'queued'> {
    const deadline = Date.now() + timeoutSeconds * 1000;
    for (;;) {
      const { rows } = await client.query('SELECT attempts, last_error FROM graphile_worker.jobs WHERE id = $1', [jobId]);
      if (rows.length === 0) return 'removed';
      if (rows[0].last_error && rows[0].attempts >= 1 && Date.now() > deadline) return 'failed';
      if (Date.now() > deadline) return 'queued';
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }
}

function describe(s: SnapshotOverview): string {
  const applies = s.applies_in_flight ? `; ${s.applies_in_flight} apply(s) streaming through it keep their own slot` : '';
  return `snapshot ${s.snapshot_id} of ${s.source_node_id}: ${s.state}, ${s.stored_bytes == null ? 'size unknown' : bytes(s.stored_bytes)} in ${s.output_dir} (on ${s.source_node_id}'s agent's machine)${applies}`;
}
