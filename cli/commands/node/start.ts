import { Args, Flags } from '@oclif/core';
import { Client } from 'pg';
import { connectToNode } from '../../../lib/connection';
import { BaseCommand, jsonFlag } from '../../base-command';
import { shellWord } from '../../../lib/format';
import { ExitCode } from '../../../lib/errors';
import { schemaSyncModes, syncSchema } from '../../../lib/schema-sync';
import { cancelInit } from '../../../lib/sql/cancelInit';
import { InitStatus } from '../../../lib/sql/getInitStatus';
import { getLeftBehind } from '../../../lib/sql/getLeftBehind';
import { getNode } from '../../../lib/sql/getNode';
import { getNodeOverview } from '../../../lib/sql/listNodes';
import { startInit } from '../../../lib/sql/startInit';
import { askToProceed } from '../../confirm';
import { cancelOnInterrupt, describeCancelled, exitCodeForInit, followInit, progressRenderer } from '../../init-follow';
import { connectToNodeDatabase } from '../../node-connection';

export default class NodeStart extends BaseCommand<typeof NodeStart> {
  static description =
    'Initialize a node from a source node and follow it until synchronized; Ctrl+C cancels it. The methods are the rows of ' +
    "the target's steep_repl.init_methods (SELECT * FROM steep_repl.init_methods); start_init refuses one not marked available.";
  static examples = [
    '<%= config.bin %> node start node_b --from node_a --db postgres://admin@db2/app',
    '<%= config.bin %> node start node_b --from node_a --parallel 4 --schema-sync auto --no-wait',
    '<%= config.bin %> node start node_b --from node_a --method direct --parallel 4 --large-table-threshold 1GB --max-parts 8',
    '<%= config.bin %> node start node_b --from node_a --resume',
  ];
  static args = { target: Args.string({ description: 'node to initialize (its database runs the init)', required: true }) };
  static flags = {
    from: Flags.string({ description: 'source node to copy from', required: true }),
    method: Flags.string({
      description: "an available method of steep_repl.init_methods (default snapshot; with --resume the failed init's)",
    }),
    parallel: Flags.integer({
      description:
        "copy workers (1-16). snapshot: table-sync workers (sets max_sync_workers_per_subscription on the target server); " +
        "direct: the agent's copy sessions (default 4)",
    }),
    'large-table-threshold': Flags.string({
      description: 'direct: split a table whose heap plus TOAST is larger than this into parts (bytes or a size like 64MB; at least 1MB; default 1GB)',
    }),
    'max-parts': Flags.integer({ description: 'direct: at most this many parts per table (1-1024; default 32)' }),
    'schema-sync': Flags.string({
      description: "schema check before the copy (default strict; with --resume the failed init's)",
      options: [...schemaSyncModes],
    }),
    force: Flags.boolean({ description: 'empty target tables that already hold rows (on this node only, not replicated)' }),
    timeout: Flags.string({ description: 'fail the init if not synchronized within this (seconds, or an interval like "2 hours")' }),
    resume: Flags.boolean({ description: 'resume a failed init from where it stopped' }),
    'reverse-slot-ttl': Flags.string({
      description: 'once synchronized, keep a slot for the reverse direction this long (seconds or an interval; default 1 day; 0: none)',
    }),
    wait: Flags.boolean({ description: 'follow the init until it ends (--no-wait: queue it and return; follow it with node progress)', default: true, allowNo: true }),
    yes: Flags.boolean({ char: 'y', description: 'schema sync manual: proceed without asking (for scripts)' }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeStart);
    // Only what was given: start_init completes the defaults, and a resume keeps what the failed init had.
    const options: Record<string, unknown> = {};
    if (flags['schema-sync'] !== undefined) options.schema_sync = flags['schema-sync'];
    if (flags.parallel !== undefined) options.parallel = flags.parallel;
    // As typed: init_options reads sizes (pg_size_bytes) and checks every range,
    // and refuses both for a method that does not take them.
    if (flags['large-table-threshold'] !== undefined) options.split_tables_larger_than = flags['large-table-threshold'];
    if (flags['max-parts'] !== undefined) options.max_parts = flags['max-parts'];
    if (flags.force) options.force = true;
    if (flags.resume) options.resume = true;
    const seconds = (value: string) => (/^\d+$/.test(value) ? Number(value) : value);
    if (flags.timeout !== undefined) options.timeout = seconds(flags.timeout);
    if (flags['reverse-slot-ttl'] !== undefined) options.reverse_slot_ttl = seconds(flags['reverse-slot-ttl']);

    const { client, config } = await connectToNodeDatabase(flags.db, args.target, 'steep-repl node start');
    try {
      if (flags['schema-sync'] === 'manual' && !flags.resume) await this.confirmSchema(client, args.target, flags.from, flags.yes);
      const started = await startInit(client, { target: args.target, source: flags.from, method: flags.method ?? null, options });
      if (!flags.wait) {
        if (flags.json) return this.printJson(started);
        this.log(`initialization of ${args.target} from ${flags.from} queued as job ${started.job_id}`);
        this.log(
          `follow it: steep-repl node progress ${shellWord(args.target)} --follow   cancel it: steep-repl node cancel ${shellWord(args.target)}`,
        );
        return;
      }
      await this.warnIfNoAgent(client, args.target);
      const final = await this.follow(config, client, args.target, flags.json);
      if (flags.json) this.printJson(final);
      process.exitCode = exitCodeForInit(final);
      if (final.state === 'synchronized') {
        if (!flags.json) this.log(`${args.target} is synchronized with ${flags.from}`);
        const skipped = final.progress?.not_replicated ?? [];
        if (!flags.json && skipped.length) {
          process.stderr.write(`warning: not replicated (logical replication cannot carry them): ${skipped.map((r) => `${r.label} (${r.reason})`).join(', ')}\n`);
        }
      } else if (final.state === 'uninitialized') {
        process.stderr.write(`${describeCancelled(args.target, await getLeftBehind(client, args.target))}\n`);
      } else {
        process.stderr.write(`error: initialization of ${args.target} ${final.state}: ${final.progress?.error ?? ''}\n`);
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  // The agent heartbeats its node every few seconds; without one the init
  // waits in preparing, which deserves a word rather than a still bar.
  // node_overview decides, as it does for node list and the TUI.
  private async warnIfNoAgent(client: Client, nodeId: string): Promise<void> {
    const node = await getNodeOverview(client, nodeId);
    if (node && ['no agent', 'agent silent'].includes(node.health)) {
      process.stderr.write(
        `warning: no agent has heartbeated node ${nodeId} ${node.last_seen ? `since ${node.last_seen.toISOString()}` : 'yet'}; ` +
          `the init waits until one runs: steep-repl agent --db <url of ${nodeId}>\n`,
      );
    }
  }

  // Manual mode: the differences are shown and accepted here, before the
  // init is queued; the agent, unattended, takes the start as the answer.
  private async confirmSchema(target: Client, targetId: string, sourceId: string, yes: boolean): Promise<void> {
    const source = await connectToNode(await getNode(target, sourceId), 'steep-repl node start');
    try {
      await syncSchema({
        source,
        target,
        sourceNodeId: sourceId,
        targetNodeId: targetId,
        mode: 'manual',
        confirm: async (differences) => yes || askToProceed(differences, sourceId, targetId, 'initialize with these differences?'),
      });
    } finally {
      await source.end().catch(() => undefined);
    }
  }

  // Ctrl+C asks the node to cancel and keeps following until it is clean; a
  // second stops waiting (cancelOnInterrupt says what each one does).
  private async follow(config: Parameters<typeof followInit>[0], client: Parameters<typeof followInit>[1], nodeId: string, json: boolean): Promise<InitStatus> {
    const renderer = progressRenderer(process.stderr);
    const following = followInit(config, client, nodeId, { render: (s) => renderer.render(s) });
    const interrupts = cancelOnInterrupt({
      nodeId,
      requestCancel: () => cancelInit(client, nodeId),
      beforeWrite: () => renderer.end(),
      write: (line) => process.stderr.write(line),
      exit: (code) => process.exit(code),
    });
    let final: InitStatus | undefined;
    try {
      final = await following.done;
      renderer.end();
      return final;
    } finally {
      interrupts.settled(final ? exitCodeForInit(final) : ExitCode.error);
      await following.stop();
    }
  }
}
