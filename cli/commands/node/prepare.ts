import { Args, Flags } from '@oclif/core';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { BaseCommand, jsonFlag } from '../../base-command';
import { connectTo, connectToNode, describeTarget } from '../../../lib/connection';
import { ExitCode, isNotInstalled, notInstalledError, SteepError } from '../../../lib/errors';
import { shellWord } from '../../../lib/format';
import { createSlotWithSnapshot, ExportedSlot } from '../../../lib/slot-with-snapshot';
import { cancelManualPrepare } from '../../../lib/sql/cancelManualPrepare';
import { getNode, RegisteredNode } from '../../../lib/sql/getNode';
import { localNodeId } from '../../../lib/sql/localNodeId';
import { InitSlot, prepareManualSlot } from '../../../lib/sql/prepareManualSlot';
import { recordManualSlot } from '../../../lib/sql/recordManualSlot';
import { recordMethodState } from '../../../lib/sql/recordMethodState';
import { startInit } from '../../../lib/sql/startInit';
import {
  completeCommand,
  nodeUrl,
  pgDumpCommand,
  pgRestoreCommand,
  recoverySettings,
  settingLines,
} from '../../backup-commands';
import { describeHoldEnd, holderApplication, PrepareFacts, prepareFacts, SetupInterrupts } from '../../manual-prepare';
import { connectToNodeDatabase } from '../../node-connection';
import { holdSeconds, holdSnapshot } from '../../snapshot-hold';
import { expiresOption } from '../../snapshot-options';

const backups = ['pg_dump', 'pg_basebackup'] as const;
type Backup = (typeof backups)[number];

export default class NodePrepare extends BaseCommand<typeof NodePrepare> {
  static description =
    "Prepare a manual init of a node from the DBA's own backup of the source: the pair's publication and slot on the source, whose " +
    'LSN is the exact handover point, and the exact next steps. pg_dump: the slot is made with an exported snapshot that this command ' +
    'holds in the foreground for the printed pg_dump --snapshot command (run it with --db of the target; the init waits there in ' +
    'preparing). pg_basebackup: take the base backup first, then prepare; the printed recovery settings make the restored copy stop ' +
    "right before the slot's LSN and promote. Either way node complete then subscribes from the slot. The slot keeps WAL on the " +
    'source until node complete uses it, node cancel drops it, or it expires.';
  static examples = [
    '<%= config.bin %> node prepare node_b --from node_a --for pg_dump --db postgres://admin@db2/app',
    '<%= config.bin %> node prepare node_b --from node_a --for pg_dump --dump-dir /backup/app.dump --jobs 8 --hold 6h --db postgres://admin@db2/app',
    '<%= config.bin %> node prepare node_b --from node_a --for pg_basebackup --expires 2d --db postgres://admin@db1/app',
  ];
  static args = { target: Args.string({ description: 'node the backup will initialize', required: true }) };
  static flags = {
    from: Flags.string({ description: 'source node the backup is taken of', required: true }),
    for: Flags.string({ description: 'the backup the DBA takes', required: true, options: [...backups] }),
    expires: Flags.string({
      description: "drop the prepared slot after this long unless node complete used it: 7d, 12h, 30m, 2w, seconds, or interval text like '7 days' (1 minute to 1 year; default 7 days)",
    }),
    'dump-dir': Flags.string({
      description: 'pg_dump: the directory pg_dump --format=directory writes (made absolute here; must not exist or be empty; default ./<target>.dump)',
    }),
    jobs: Flags.integer({ description: 'pg_dump: --jobs of the printed pg_dump and pg_restore (1-64; default 4)', min: 1, max: 64 }),
    hold: Flags.string({
      description: "pg_dump: release the snapshot after this long at the latest: seconds, or 90m, 6h, 2d (default: until the slot expires)",
    }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodePrepare);
    const backup = flags.for as Backup;
    // Checked before connecting: bad input changes nothing.
    if (args.target === flags.from) {
      throw new SteepError(`node ${args.target} cannot be initialized from itself`, ExitCode.badArguments);
    }
    const options: Record<string, unknown> = {};
    if (flags.expires !== undefined) options.expires = expiresOption(flags.expires);
    if (backup === 'pg_basebackup') {
      const dumpOnly = (['dump-dir', 'jobs', 'hold'] as const).filter((f) => flags[f] !== undefined);
      if (dumpOnly.length) {
        throw new SteepError(`--${dumpOnly[0]} is for --for pg_dump only`, ExitCode.badArguments, 'a base backup is taken before the prepare; nothing is held for it');
      }
      return this.prepareBaseBackup(args.target, flags.from, options, flags.db, flags.json);
    }
    let holdMs: number | undefined;
    if (flags.hold !== undefined) {
      const seconds = holdSeconds(flags.hold);
      if (seconds === undefined) {
        throw new SteepError(`--hold ${JSON.stringify(flags.hold)} is not a duration`, ExitCode.badArguments, "give seconds, or a number with s, m, h, d or w ('90m', '6h', '2d')");
      }
      holdMs = seconds * 1000;
    }
    const dumpDir = path.resolve(flags['dump-dir'] ?? `${args.target.replace(/[^A-Za-z0-9_.-]+/g, '_')}.dump`);
    checkDumpDir(dumpDir);
    return this.prepareDump({ target: args.target, source: flags.from, options, db: flags.db, json: flags.json, dumpDir, jobs: flags.jobs ?? 4, holdMs });
  }

  // On the target's database, where the init is recorded and waits in
  // preparing. start_init runs once in a transaction rolled back, as the
  // check, before the source makes anything; it is recorded for real once
  // the slot exists (a transaction kept open meanwhile would hold up the
  // slot, which waits for every running transaction of the server). Any
  // failure after the source's prepare undoes it.
  private async prepareDump(p: {
    target: string;
    source: string;
    options: Record<string, unknown>;
    db?: string;
    json: boolean;
    dumpDir: string;
    jobs: number;
    holdMs?: number;
  }): Promise<void> {
    const app = 'steep-repl node prepare';
    const { client: target } = await connectToNodeDatabase(p.db, p.target, app);
    let source: Client | undefined;
    let slot: ExportedSlot | undefined;
    let interrupts: SetupInterrupts | undefined;
    let prepared = false;
    let facts!: PrepareFacts;
    let targetNode!: RegisteredNode;
    let sourceNode!: RegisteredNode;
    let row!: InitSlot;
    const request = { target: p.target, source: p.source, method: 'manual', options: { backup: 'pg_dump', ...p.options } };
    try {
      sourceNode = await getNode(target, p.source);
      targetNode = await getNode(target, p.target);
      await target.query('BEGIN');
      await startInit(target, request);
      await target.query('ROLLBACK');
      interrupts = new SetupInterrupts(sourceNode);
      source = await connectToNode(sourceNode, app);
      interrupts.watch(source);
      interrupts.check();
      row = await prepareManualSlot(source, p.target, 'pg_dump', p.options).catch((err) => {
        if ((err as { code?: string }).code === 'SR001') throw notInSourceRegistry(p.target, targetNode, sourceNode);
        throw err;
      });
      prepared = true;
      interrupts.check();
      slot = await createSlotWithSnapshot(sourceNode, row.slot_name, holderApplication, { onConnected: (pid) => interrupts!.watch(pid) });
      interrupts.check();
      row = await recordManualSlot(source, row.slot_name, slot.consistentLsn, slot.snapshotName);
      facts = await prepareFacts(source, target);
      interrupts.check();
      await target.query('BEGIN');
      await startInit(target, request);
      await recordMethodState(target, p.target, {
        slot_name: row.slot_name,
        consistent_lsn: slot.consistentLsn,
        snapshot_name: slot.snapshotName,
        backup: 'pg_dump',
        expires_at: new Date(row.expires_at).toISOString(),
      });
      await target.query('COMMIT');
    } catch (err) {
      await target.query('ROLLBACK').catch(() => undefined);
      await slot?.release();
      await interrupts?.stop();
      if (prepared && source) await undoPrepare(sourceNode, p.target);
      throw interrupts?.signal ? interrupts.interruptedError() : err;
    } finally {
      await interrupts?.stop();
      await source?.end().catch(() => undefined);
      await target.end().catch(() => undefined);
    }

    const expiresAt = new Date(row.expires_at);
    const commands = {
      pg_dump: pgDumpCommand({ snapshotName: slot.snapshotName, jobs: p.jobs, dir: p.dumpDir, ownSchemas: facts.ownSchemas, extension: facts.extension, source: sourceNode }),
      pg_restore: pgRestoreCommand({ jobs: p.jobs, dir: p.dumpDir, target: targetNode }),
      complete: completeCommand(p.target, targetNode),
      cancel: `steep-repl node cancel ${shellWord(p.target)} --db ${shellWord(nodeUrl(targetNode))}`,
    };
    if (p.json) {
      this.printJson({
        target: p.target,
        source: p.source,
        backup: 'pg_dump',
        slot_name: row.slot_name,
        lsn: slot.consistentLsn,
        snapshot_name: slot.snapshotName,
        expires_at: expiresAt.toISOString(),
        dump_dir: p.dumpDir,
        jobs: p.jobs,
        source_server_version: facts.serverVersion,
        commands,
      });
    } else {
      this.log(
        [
          `prepared the init of ${p.target} from ${p.source} for pg_dump: slot ${row.slot_name} at LSN ${slot.consistentLsn}, ` +
            `snapshot ${slot.snapshotName}, expires ${expiresAt.toISOString()}`,
          `1. dump ${p.source} on the snapshot while this command holds it (pg_dump of PostgreSQL ${facts.serverMajor} or later):`,
          `  ${commands.pg_dump}`,
          `2. restore the dump into ${p.target}'s database:`,
          `  ${commands.pg_restore}`,
          `3. subscribe ${p.target} from the slot and follow it until synchronized:`,
          `  ${commands.complete}`,
          `cancel instead: ${commands.cancel}`,
        ].join('\n'),
      );
    }
    if (facts.targetTables > 0) {
      process.stderr.write(
        `warning: ${p.target} has ${facts.targetTables} table${facts.targetTables === 1 ? '' : 's'} in its own schemas already; pg_restore creates ` +
          `the source's and stops at the first that exists: restore into a database without them (steep_repl's own schemas stay)\n`,
      );
    }
    const untilExpiry = Math.max(0, expiresAt.getTime() - Date.now());
    const holdMs = Math.min(p.holdMs ?? untilExpiry, untilExpiry);
    process.stderr.write(
      `holding snapshot ${slot.snapshotName} until ${new Date(Date.now() + holdMs).toISOString()}: keep this running until pg_dump has started ` +
        `(all its --jobs connected), then press Enter or Ctrl+C to release it; node complete releases it too. The slot stays either way.\n`,
    );
    // a Ctrl+C that came just as the prepare was done ends the hold at once
    const lateSignal = interrupts?.signal;
    const end = lateSignal ? { kind: 'signal' as const, signal: lateSignal } : await holdSnapshot(slot, holdMs);
    await slot.release();
    const outcome = await describeHoldEnd(end, { target: p.target, targetNode, sourceNode, slotName: row.slot_name, expiresAt, snapshotName: slot.snapshotName });
    process.stderr.write(`${outcome.message}\n`);
    process.exitCode = outcome.exitCode;
  }

  // On the source (or through the registry of --db): the slot only. The
  // target does not exist yet; its registry comes with the copy, so the
  // source's registry must know it.
  private async prepareBaseBackup(targetId: string, sourceId: string, options: Record<string, unknown>, db: string | undefined, json: boolean): Promise<void> {
    const app = 'steep-repl node prepare';
    const here = await connectTo(db, app);
    let source: Client = here;
    try {
      let registered: string | null;
      try {
        registered = await localNodeId(here);
      } catch (err) {
        throw isNotInstalled(err) ? notInstalledError(describeTarget(db)) : err;
      }
      if (registered !== sourceId) source = await connectToNode(await getNode(here, sourceId), app);
      const sourceNode = await getNode(source, sourceId);
      const targetNode = await getNode(source, targetId).catch((err) => {
        if ((err as { code?: string }).code !== 'SR001') throw err;
        throw new SteepError(
          `node ${targetId} is not registered in the registry of ${sourceId}: the base backup carries that registry to the copy, where node complete makes ${targetId} the local node`,
          ExitCode.badArguments,
          `register it there first, with the address the copy will have (its database is named as ${sourceId}'s): ` +
            `steep-repl node register ${shellWord(targetId)} --host <the copy's host> --port <its port> --dbname ${shellWord(sourceNode.dbname)} --db ${shellWord(nodeUrl(sourceNode))}`,
        );
      });
      const interrupts = new SetupInterrupts(sourceNode);
      let row: InitSlot;
      try {
        interrupts.watch(source);
        row = await prepareManualSlot(source, targetId, 'pg_basebackup', options);
        try {
          interrupts.check();
          // a statement of its own (see prepare_slot.sql)
          const { rows } = await source.query("SELECT lsn::text FROM pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput')", [row.slot_name]);
          interrupts.check();
          row = await recordManualSlot(source, row.slot_name, rows[0].lsn);
        } catch (err) {
          await interrupts.stop();
          await undoPrepare(sourceNode, targetId);
          throw interrupts.signal ? interrupts.interruptedError() : err;
        }
      } finally {
        await interrupts.stop();
      }
      const facts = await prepareFacts(source);
      const settings = recoverySettings({ lsn: row.lsn!, source: sourceNode, stopSubscriptions: facts.enabledSubscriptions > 0 });
      const expiresAt = new Date(row.expires_at).toISOString();
      const commands = {
        complete: completeCommand(targetId, targetNode),
        cancel: `steep-repl node cancel ${shellWord(targetId)} --db ${shellWord(nodeUrl(sourceNode))}`,
      };
      if (json) {
        return this.printJson({
          target: targetId,
          source: sourceId,
          backup: 'pg_basebackup',
          slot_name: row.slot_name,
          lsn: row.lsn,
          timeline: row.timeline,
          expires_at: expiresAt,
          recovery_settings: settings,
          enabled_subscriptions: facts.enabledSubscriptions,
          commands,
        });
      }
      const lines = [
        `prepared the init of ${targetId} from ${sourceId} for pg_basebackup: slot ${row.slot_name} at LSN ${row.lsn} on timeline ${row.timeline}, expires ${expiresAt}`,
        `take the base backup first, prepare after: recovery can only stop at LSN ${row.lsn} if the backup ended before it (none was running on ${sourceId} now).`,
        `  a backup taken after this prepare cannot be used: ${commands.cancel}, then prepare again after it`,
        `restore the base backup and add to the copy's postgresql.auto.conf before its first start:`,
        ...settingLines(settings.common),
        `  as a standby of ${sourceId}, also (and create standby.signal in its data directory):`,
        ...settingLines(settings.standby, '    '),
        `  or from your WAL archive instead (and create recovery.signal in its data directory):`,
        ...settingLines(settings.archive, '    '),
      ];
      if (facts.enabledSubscriptions > 0) {
        lines.push(
          `max_logical_replication_workers = 0: ${sourceId}'s server has ${facts.enabledSubscriptions} enabled subscription${facts.enabledSubscriptions === 1 ? '' : 's'}, ` +
            'which the copy would start at promotion and take its peers\' slots with; node complete removes them, then says to reset it',
        );
      }
      lines.push(`once the copy has promoted (SELECT pg_is_in_recovery() says false), subscribe it from the slot:`, `  ${commands.complete}`);
      this.log(lines.join('\n'));
      if (targetNode.dbname !== sourceNode.dbname) {
        process.stderr.write(
          `warning: ${targetId} is registered with database ${targetNode.dbname}, but the copy's database is named ${sourceNode.dbname} as on ${sourceId}; ` +
            `node complete needs --db of the copy's database\n`,
        );
      }
    } finally {
      if (source !== here) await source.end().catch(() => undefined);
      await here.end().catch(() => undefined);
    }
  }
}

// The source's registry must know the target too: the source's prepare
// is recorded for it, and the agent reaches it from there.
function notInSourceRegistry(targetId: string, target: RegisteredNode, source: RegisteredNode): SteepError {
  const register = ['steep-repl', 'node', 'register', shellWord(targetId), '--host', shellWord(target.host), '--port', String(target.port),
    '--dbname', shellWord(target.dbname), ...(target.user ? ['--user', shellWord(target.user)] : []), '--db', shellWord(nodeUrl(source))].join(' ');
  return new SteepError(`node ${targetId} is not registered in the registry of ${source.node_id}; nothing was prepared`, ExitCode.badArguments,
    `register it there first: ${register}`);
}

// A prepare that failed after the source recorded it: its slot,
// publication and row go again (the failure is what the user sees). On a
// connection of its own: the step's may be the one that failed.
async function undoPrepare(sourceNode: RegisteredNode, targetId: string): Promise<void> {
  try {
    const source = await connectToNode(sourceNode, 'steep-repl node prepare');
    try {
      await cancelManualPrepare(source, targetId);
    } finally {
      await source.end().catch(() => undefined);
    }
  } catch (err) {
    process.stderr.write(
      `warning: the prepare for ${targetId} could not be undone on ${sourceNode.node_id} (${(err as Error).message}); ` +
        `run SELECT steep_repl.cancel_manual_prepare(${literal(targetId)}) there\n`,
    );
  }
}

const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;

// pg_dump --format=directory makes the directory itself, or writes into an empty one.
function checkDumpDir(dir: string): void {
  const stat = fs.statSync(dir, { throwIfNoEntry: false });
  if (!stat) return;
  if (!stat.isDirectory()) throw new SteepError(`--dump-dir ${dir} exists and is not a directory`, ExitCode.badArguments, 'give a directory that does not exist yet or is empty');
  if (fs.readdirSync(dir).length > 0) {
    throw new SteepError(`--dump-dir ${dir} is not empty: pg_dump --format=directory writes into a new or empty directory`, ExitCode.badArguments,
      'give a directory that does not exist yet or is empty');
  }
}
