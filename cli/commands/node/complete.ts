import { Args, Flags } from '@oclif/core';
import { Client, ClientConfig } from 'pg';
import { BaseCommand, jsonFlag } from '../../base-command';
import { clientConfig, connectTo, connectToNode, describeTarget, nodeClientConfig } from '../../../lib/connection';
import { ExitCode, isNotInstalled, notInstalledError, SteepError } from '../../../lib/errors';
import { shellWord } from '../../../lib/format';
import { Backup, handoverProblems, lsnPattern, numberedProblems, RecoveryEnd } from '../../../lib/manual/handover';
import { compareFingerprints, describeDifferences, fingerprintSet } from '../../../lib/schema-sync';
import { CompleteOptions, completeInit, InitCompleteRequested } from '../../../lib/sql/completeInit';
import { getInitStatus } from '../../../lib/sql/getInitStatus';
import { getNode } from '../../../lib/sql/getNode';
import { localNodeId } from '../../../lib/sql/localNodeId';
import { recoveryEnd } from '../../../lib/sql/recoveryEnd';
import { nodeUrl } from '../../backup-commands';
import { followToEnd, initFlags, initOptions, warnIfNoAgent } from '../../init-start';

export default class NodeComplete extends BaseCommand<typeof NodeComplete> {
  static description =
    "Complete a manual init once the DBA's backup is restored: check the handover (the source's prepared slot, the LSN, a base " +
    "backup's end of recovery, the schema, strictly) and refuse with nothing changed when anything is off; then subscribe the node " +
    'from the prepared slot (copy_data = false, its origin at the handover point) and follow it until synchronized; Ctrl+C cancels it. ' +
    "pg_dump: run it with --db of the target. pg_basebackup: with --db of the restored copy, once promoted: it first removes what " +
    "came along from the source (subscriptions, publications, steep_repl's rows and jobs) and makes the target its local node.";
  static examples = [
    '<%= config.bin %> node complete node_b --db postgres://admin@db2/app',
    '<%= config.bin %> node complete node_b --source-lsn 16/B374D848 --db postgres://admin@db2/app',
    '<%= config.bin %> node complete node_b --no-wait --json --db postgres://admin@copy/app',
  ];
  static args = { target: Args.string({ description: 'node whose restored backup subscribes now', required: true }) };
  static flags = {
    'source-lsn': Flags.string({
      description: "the source's LSN the backup was made at, when not the prepared slot's (such as 16/B374D848); the subscription starts there",
    }),
    timeout: initFlags.timeout,
    'reverse-slot-ttl': initFlags['reverse-slot-ttl'],
    wait: initFlags.wait,
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeComplete);
    const sourceLsn = flags['source-lsn'];
    if (sourceLsn !== undefined && !lsnPattern.test(sourceLsn)) {
      throw new SteepError(`--source-lsn ${JSON.stringify(sourceLsn)} is not an LSN such as 16/B374D848`, ExitCode.badArguments,
        'give the LSN the backup was made at as PostgreSQL prints it (two hexadecimal numbers with a slash), or none for the prepared slot\'s');
    }
    const options: CompleteOptions = initOptions({ timeout: flags.timeout, 'reverse-slot-ttl': flags['reverse-slot-ttl'] });
    if (sourceLsn !== undefined) options.source_lsn = sourceLsn;

    const app = 'steep-repl node complete';
    const found = await findCompleteDatabase(flags.db, args.target, app);
    const { client, config } = found;
    try {
      await this.precheck(client, args.target, found, sourceLsn);
      const requested = await completeInit(client, args.target, options);
      if (!flags.json) this.describeReset(requested);
      if (requested.restart_required) {
        if (flags.json) this.printJson(requested);
        const again = `steep-repl node complete ${shellWord(args.target)} --db ${shellWord(nodeUrl(await getNode(client, args.target)))}`;
        throw new SteepError(requested.message ?? 'max_logical_replication_workers is 0 on this server', ExitCode.error, `${requested.hint ?? ''}: ${again}`);
      }
      if (!flags.wait) {
        if (flags.json) return this.printJson(requested);
        this.log(`manual initialization of ${args.target} from ${requested.source_node_id} queued as job ${requested.job_id}${requested.resumed ? ' (resumed)' : ''}`);
        this.log(`follow it: steep-repl node progress ${shellWord(args.target)} --follow   cancel it: steep-repl node cancel ${shellWord(args.target)}`);
        return;
      }
      await warnIfNoAgent(client, args.target);
      await followToEnd(config, client, args.target, requested.source_node_id, flags.json, (line) => this.log(line));
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  // The same check the agent runs before it subscribes (handoverProblems),
  // and the schema compared strictly, before anything changes.
  private async precheck(client: Client, target: string, found: CompleteDatabase, sourceLsn: string | undefined): Promise<void> {
    const plan = found.copy ?? (await ownInit(client, target));
    if (!plan) return; // complete_init says what is wrong, changing nothing
    const source = await connectToNode(await getNode(client, plan.sourceNodeId), 'steep-repl node complete');
    try {
      const input = {
        targetNodeId: target,
        slotName: plan.slotName,
        backup: plan.backup,
        sourceLsn: sourceLsn ?? plan.sourceLsn,
        recoveryEnd: plan.recoveryEnd,
        sourceNodeId: plan.sourceNodeId,
      };
      // On the copy, complete_init removes what came along first and then
      // says to reset max_logical_replication_workers (set to 0 for that).
      const problemsOf = async (p: typeof input) => {
        const check = await handoverProblems(source, client, p);
        return { ...check, problems: found.copy ? check.problems.filter((x) => !x.startsWith('max_logical_replication_workers is 0')) : check.problems };
      };
      const check = await problemsOf(input);
      if (check.problems.length) {
        // only --source-lsn is wrong when the prepared slot's LSN would do: a bad argument
        const lsnOnly = sourceLsn !== undefined && (await problemsOf({ ...input, sourceLsn: null })).problems.length === 0;
        throw new SteepError(
          `node complete of ${target} refused (nothing was changed):\n${numberedProblems(check.problems)}`,
          lsnOnly ? ExitCode.badArguments : ExitCode.error,
          check.hint || undefined,
        );
      }
      const differences = (await compareFingerprints(client, await fingerprintSet(source))).filter((t) => t.blocking);
      if (differences.length) {
        throw new SteepError(
          `schema of node ${target} differs from node ${plan.sourceNodeId} (${differences.length} table${differences.length === 1 ? '' : 's'}; node complete compares strictly, nothing was changed):\n${describeDifferences(differences)}`,
          ExitCode.schemaMismatch,
          `restore the ${plan.backup === 'pg_dump' ? 'dump' : 'base backup'} as taken (the tables must match ${plan.sourceNodeId}'s), or align them, then complete again`,
        );
      }
    } finally {
      await source.end().catch(() => undefined);
    }
  }

  // What a copy's reset removed, and what it could not remove from here.
  private describeReset(r: InitCompleteRequested): void {
    if (r.removed?.length) process.stderr.write(`removed what came along from ${r.source_node_id}: ${r.removed.join(', ')}\n`);
    for (const other of r.other_databases ?? []) {
      process.stderr.write(
        `warning: subscription ${other.subscription} of database ${other.database} came along too${other.enabled ? ' (enabled)' : ''}; ` +
          `remove it there (psql -d ${shellWord(other.database)}):\n${other.statements.map((s) => `  ${s};`).join('\n')}\n`,
      );
    }
  }
}

interface CompletePlan {
  sourceNodeId: string;
  slotName: string;
  backup: Backup;
  sourceLsn?: string | null;
  recoveryEnd?: RecoveryEnd | null;
}

interface CompleteDatabase {
  client: Client;
  config: ClientConfig;
  // a pg_basebackup copy of the source, not yet reset (its registry is the source's)
  copy?: CompletePlan;
}

// The target's own database: --db when it is the target, or a restored
// copy that holds the source's pg_basebackup prepare for it; else the
// target's address from the registry --db holds.
async function findCompleteDatabase(db: string | undefined, target: string, app: string): Promise<CompleteDatabase> {
  const client = await connectTo(db, app);
  try {
    const local = await localNodeId(client);
    if (local === target) return { client, config: clientConfig(db, app) };
    const { rows } = await client.query(
      `SELECT slot_name FROM steep_repl.init_slots WHERE for_node = $1 AND purpose = 'manual' AND backup = 'pg_basebackup'`,
      [target],
    );
    if (rows.length && local) {
      // a base backup carries no slots: where the prepare's slot exists, this is the source itself
      const { rows: slots } = await client.query('SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND database = current_database()', [rows[0].slot_name]);
      if (slots.length) {
        const copy = await getNode(client, target);
        throw new SteepError(
          `this database is source node ${local}, which holds the prepared slot ${rows[0].slot_name}: node complete runs on the copy restored from its base backup`,
          ExitCode.badArguments,
          `give --db of the promoted copy: steep-repl node complete ${shellWord(target)} --db ${shellWord(nodeUrl(copy))}`,
        );
      }
      return { client, config: clientConfig(db, app), copy: { sourceNodeId: local, slotName: rows[0].slot_name, backup: 'pg_basebackup', recoveryEnd: await recoveryEnd(client).catch(() => undefined) } };
    }
    const node = await getNode(client, target);
    const own = await connectToNode(node, app);
    await client.end();
    return { client: own, config: nodeClientConfig(node, app) };
  } catch (err) {
    await client.end().catch(() => undefined);
    throw isNotInstalled(err) ? notInstalledError(describeTarget(db)) : err;
  }
}

// The target's manual init waiting for complete, as it recorded it.
async function ownInit(client: Client, target: string): Promise<CompletePlan | undefined> {
  const status = await getInitStatus(client, target);
  const state = status.method_state;
  if (status.progress?.method !== 'manual' || !['preparing', 'failed'].includes(status.state)) return undefined;
  if (!status.source_node_id || !state?.slot_name || !state.backup) return undefined;
  return {
    sourceNodeId: status.source_node_id,
    slotName: state.slot_name,
    backup: state.backup,
    sourceLsn: state.source_lsn ?? null,
    recoveryEnd: state.recovery_end ?? null,
  };
}
