// snapshot generate on the source (SPEC 4.3, issue 11): the source's
// replicated tables written to files at one exported snapshot, for an apply
// to load later and stream from (a copy of) the snapshot's slot. The agent
// of the source runs it (task snapshot_generate); see docs/snapshot.md.
//
//   1. the output directory checked (absolute, missing or empty) and made;
//   2. publication S over the replicated tables, then the slot with an
//      exported snapshot, made and held by a process of its own
//      (copy/holder.ts): pgoutput decodes a change with the publications as
//      they were when it was written, so S must come first;
//   3. the parts planned on the snapshot (copy/parts.ts), recorded in
//      snapshot_parts with their file names;
//   4. N workers, each in a transaction that imported the snapshot, write
//      one part after another (write-part.ts), reporting every second;
//   5. schema.sql, sequences.json and manifest.json, read in the snapshot's
//      transaction and written last; state ready; the snapshot let go.
//
// Resume: killed at any step, the next run continues while the exported
// snapshot lives (its holder outlives the agent): done parts are kept, a
// part cut off is written again from its start. Without the snapshot it
// fails clearly: slot and publication dropped, the files it wrote removed.
// A generate whose snapshot was deleted meanwhile stops and removes them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { clientConfig, connect, describeTarget, redactSecrets } from '../../lib/connection';
import { SteepError } from '../../lib/errors';
import { tableLabel } from '../../lib/identifiers';
import { checkCompression } from '../../lib/snapshot/compression';
import {
  manifestChecksum,
  ManifestBody,
  manifestFormat,
  manifestFile,
  ManifestFile,
  ManifestSequence,
  ManifestTable,
  manifestText,
  partFileName,
  schemaFile,
  sequencesFile,
} from '../../lib/snapshot/manifest';
import { partPlace } from '../../lib/sql/initParts';
import { listReplicatedTables } from '../../lib/sql/listReplicatedTables';
import { TableName } from '../../lib/sql/queryable';
import {
  finishSnapshot,
  finishSnapshotPart,
  getSnapshotStatus,
  listSnapshotParts,
  planSnapshotParts,
  recordSnapshotExport,
  reportSnapshotParts,
  SnapshotPart,
  SnapshotPartReport,
  SnapshotStatus,
  startSnapshotPart,
} from '../../lib/sql/snapshots';
import { HeldSnapshot, holdSeconds, importSnapshot, isSnapshotGone, readerOptions, startHolder } from '../copy/holder';
import { partLabel, planParts } from '../copy/parts';
import { runLanes } from '../copy/lanes';
import { RateMeter } from '../init/rate-meter';
import { pollMs } from '../init/runner';
import { isConnectionError } from '../init/failure';
import { dropPublication, ensurePublication } from '../replication/publication';
import { dropSlot, findSlots } from '../replication/slot';
import { TaskContext } from '../task';
import { prepareOutputDir, removeSnapshotFiles, writeFileDurably } from './files';
import { TablePlan, tablePlan, writePart } from './write-part';

// Runs of the writers that may end on a lost session while the snapshot lives.
const writeAttempts = 3;

// The snapshot is no longer generating (deleted, or failed by someone
// else) or its job was cancelled: the generate stops where it is.
class Stopped extends Error {}

// The exported snapshot can no longer be imported (its holder is gone).
class SnapshotGone extends SteepError {
  constructor(snapshotName: string) {
    super(
      `the exported snapshot ${snapshotName} no longer exists (its holder process ended: the agent and the holder were stopped, ` +
        'or the server restarted) before every file was written, and a snapshot cannot be completed without it',
      undefined,
      'generate a new snapshot (steep-repl snapshot generate); this one was removed with its slot and files',
    );
  }
}

export async function generateSnapshot(ctx: TaskContext, snapshotId: string): Promise<void> {
  const db = await connect(clientConfig(ctx.connectionString, 'steep-repl snapshot'), describeTarget(ctx.connectionString), ctx.shutdown);
  const run = new GenerateRun(ctx, db, snapshotId);
  try {
    await run.execute();
  } finally {
    await run.close();
  }
}

class GenerateRun {
  private status!: SnapshotStatus;
  // in a transaction that imported the snapshot, for the whole run: the
  // plan, the tables' columns and the manifest's facts are read on it
  private meta?: Client;
  private held?: HeldSnapshot;
  // the directory was found usable by this run, or by one that made the slot after it
  private dirAccepted = false;
  private readonly plans = new Map<string, Promise<TablePlan>>();

  constructor(
    private readonly ctx: TaskContext,
    private readonly db: Client,
    private readonly id: string,
  ) {}

  async execute(): Promise<void> {
    this.status = await getSnapshotStatus(this.db, this.id);
    if (this.status.state !== 'generating') {
      this.log('warn', 'snapshot.job_ignored', { reason: `the snapshot is ${this.status.state}` });
      return;
    }
    this.log('info', 'snapshot.job_started', { output_dir: this.status.output_dir, resume: !!this.status.consistent_lsn });
    try {
      checkCompression(this.status.compression, "the source's agent");
      if (!this.status.consistent_lsn) await this.begin();
      else await this.resume();
      await this.writeParts();
      await this.finish();
    } catch (err) {
      const now = await getSnapshotStatus(this.db, this.id).catch(() => undefined);
      if (now && now.state !== 'generating') {
        this.log('warn', 'snapshot.generate_stopped', { reason: `the snapshot is ${now.state}` });
        if (now.state === 'deleted' || now.state === 'failed') await this.removeFiles();
        return;
      }
      if (this.ctx.shutdown.aborted) {
        // the holder keeps the snapshot: the job runs again when an agent starts
        this.log('info', 'snapshot.generate_paused', { reason: 'agent stopping; the generate resumes when an agent starts' });
        throw err;
      }
      await this.fail(err as Error);
    }
  }

  async close(): Promise<void> {
    await this.meta?.end().catch(() => undefined);
    await this.db.end().catch(() => undefined);
  }

  // Steps 1-3 on a fresh snapshot.
  private async begin(): Promise<void> {
    const { output_dir: dir, slot_name: slotName, publication } = this.status;
    const { created } = await prepareOutputDir(dir);
    this.dirAccepted = true;
    this.log('info', 'snapshot.output_dir_ready', { output_dir: dir, created });

    const tables = await listReplicatedTables(this.db);
    const noIdentity = tables.filter((t) => !t.has_identity);
    if (noIdentity.length) {
      throw new SteepError(
        `${noIdentity.length} table(s) have neither a primary key nor a replica identity, so their updates and deletes cannot replicate after an apply: ${noIdentity.map((t) => t.label).join(', ')}`,
        undefined,
        'add a primary key, or ALTER TABLE ... REPLICA IDENTITY FULL (or USING INDEX), then generate again',
      );
    }
    // left by a run killed before it recorded the slot: nothing streams from it
    for (const slot of await findSlots(this.db, [slotName])) {
      await dropSlot(this.db, slot);
      this.log('warn', 'snapshot.stale_slot_dropped', { slot_name: slotName });
    }
    await dropPublication(this.db, publication);
    await ensurePublication(this.db, publication, tables);
    this.checkpoint();

    this.held = await startHolder({ snapshotId: this.id, slotName, target: this.ctx.connectionString, holdSeconds }, { outliveAgent: true });
    try {
      await recordSnapshotExport(this.db, this.id, this.held.consistentLsn, this.held.snapshotName);
    } catch (err) {
      this.held.release();
      throw err;
    }
    this.status = await getSnapshotStatus(this.db, this.id);
    this.log('info', 'snapshot.exported', {
      slot_name: this.held.slotName,
      consistent_lsn: this.held.consistentLsn,
      snapshot: this.held.snapshotName,
      holder_pid: this.held.pid,
      publication,
      tables: tables.length,
    });
    await this.openMeta(this.held.snapshotName);
    await this.plan();
  }

  // A run after one that made the slot: only while its snapshot lives.
  private async resume(): Promise<void> {
    this.dirAccepted = true;
    const name = this.status.snapshot_name;
    if (!name) throw new SnapshotGone('(released)');
    await this.openMeta(name);
    let parts = await listSnapshotParts(this.db, this.id);
    if (!parts.length) {
      await this.plan();
      parts = await listSnapshotParts(this.db, this.id);
    }
    for (const part of parts.filter((p) => p.state === 'done')) {
      const stat = await fs.promises.stat(path.join(this.status.output_dir, part.file_name)).catch(() => undefined);
      if (!stat?.isFile() || stat.size !== part.stored_bytes) {
        throw new SteepError(
          `the file ${part.file_name} of a written part of ${partLabel({ ...part, state: 'done' })} is missing or changed in ${this.status.output_dir}`,
          undefined,
          'leave the directory alone while a snapshot is generated; generate a new one',
        );
      }
    }
    this.log('info', 'snapshot.resumed', {
      snapshot: name,
      parts_done: parts.filter((p) => p.state === 'done').length,
      parts_cut: parts.filter((p) => p.state === 'writing').map((p) => partLabel({ ...p, state: 'pending' })),
      parts_pending: parts.filter((p) => p.state === 'pending').length,
    });
  }

  private async openMeta(snapshotName: string): Promise<void> {
    this.meta = await this.connectReader('steep-repl snapshot');
    try {
      await importSnapshot(this.meta, snapshotName);
    } catch (err) {
      if (isSnapshotGone(err)) throw new SnapshotGone(snapshotName);
      throw err;
    }
  }

  private connectReader(applicationName: string, signal?: AbortSignal): Promise<Client> {
    return connect({ ...clientConfig(this.ctx.connectionString, applicationName), options: readerOptions }, describeTarget(this.ctx.connectionString), signal);
  }

  // The tables S was made for, as its catalog rows say (not the live list,
  // which may have changed since).
  private async publicationTables(): Promise<TableName[]> {
    const { rows } = await this.db.query(
      `SELECT n.nspname AS schema_name, c.relname AS table_name
       FROM pg_publication p JOIN pg_publication_rel r ON r.prpubid = p.oid
       JOIN pg_class c ON c.oid = r.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE p.pubname = $1 ORDER BY 1, 2`,
      [this.status.publication],
    );
    return rows;
  }

  private async plan(): Promise<void> {
    const tables = await this.publicationTables();
    const rule = { threshold: Number(this.status.split_tables_larger_than), maxParts: Number(this.status.max_parts) };
    const parts = await planParts(this.meta!, tables, rule);
    const named: SnapshotPart[] = parts.map(({ state: _state, copies: _copies, ...p }, i) => ({ ...p, file_name: partFileName(i + 1, p, this.status.compression) }));
    const count = await planSnapshotParts(this.db, this.id, tables, named);
    const split = [...new Set(parts.filter((p) => p.part_count > 1).map((p) => `${partLabel(p).replace(/ part .*/, '')} (${p.split}, ${p.part_count})`))];
    this.log('info', 'snapshot.planned', { tables: tables.length, parts: count, split, threshold: rule.threshold, max_parts: rule.maxParts });
  }

  private tablePlan(table: TableName): Promise<TablePlan> {
    const key = JSON.stringify([table.schema_name, table.table_name]);
    if (!this.plans.has(key)) this.plans.set(key, tablePlan(this.meta!, table.schema_name, table.table_name));
    return this.plans.get(key)!;
  }

  // Step 4, again while the snapshot lives if a session was lost.
  private async writeParts(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const parts = await listSnapshotParts(this.db, this.id);
      if (parts.every((p) => p.state === 'done')) return;
      try {
        await this.writeOnce(parts);
      } catch (err) {
        if (err instanceof Stopped || this.ctx.shutdown.aborted || this.ctx.cancel.aborted) throw err;
        if (!isConnectionError(err) || attempt >= writeAttempts) throw err;
        this.log('warn', 'snapshot.write_interrupted', { error: (err as Error).message, attempt });
      }
    }
  }

  private async writeOnce(parts: SnapshotPart[]): Promise<void> {
    const snapshotName = this.status.snapshot_name!;
    const queue = parts.filter((p) => p.state !== 'done').sort((a, b) => b.bytes_estimate - a.bytes_estimate);
    const active = new Map<number, { part: SnapshotPart; pid: number; progress: { bytes: number } }>();
    // what the done parts hold, for the rates and the ETA
    let doneRows = parts.filter((p) => p.state === 'done').reduce((n, p) => n + Number(p.rows ?? 0), 0);
    let doneBytes = parts.filter((p) => p.state === 'done').reduce((n, p) => n + Number(p.raw_bytes ?? 0), 0);
    const rowsEstimate = parts.reduce((n, p) => n + Number(p.rows_estimate), 0);
    const workers = Math.min(Number(this.status.parallel), queue.length);

    const worker = async (n: number, signal: AbortSignal) => {
      let source: Client | undefined;
      try {
        source = await this.connectReader('steep-repl snapshot writer', signal);
        try {
          await importSnapshot(source, snapshotName);
        } catch (err) {
          throw isSnapshotGone(err) ? new SnapshotGone(snapshotName) : err;
        }
        for (let part = queue.shift(); part && !signal.aborted; part = queue.shift()) {
          const started = await startSnapshotPart(this.db, this.id, part, n);
          if (!started) continue;
          const plan = await this.tablePlan(part);
          const progress = { bytes: 0 };
          active.set(n, { part, pid: (source as unknown as { processID: number }).processID, progress });
          const t0 = Date.now();
          const written = await writePart({ source, dir: this.status.output_dir, part, plan, compression: this.status.compression, progress });
          await finishSnapshotPart(this.db, this.id, part, written);
          active.delete(n);
          doneRows += written.rows;
          doneBytes += written.raw_bytes;
          this.log('info', 'snapshot.part_done', {
            part: partLabel({ ...part, state: 'done' }),
            table: tableLabel(part),
            file: part.file_name,
            worker: n,
            rows: written.rows,
            raw_bytes: written.raw_bytes,
            stored_bytes: written.stored_bytes,
            format: plan.format,
            seconds: (Date.now() - t0) / 1000,
            writes: started.writes,
          });
        }
      } finally {
        active.delete(n);
        await source?.end().catch(() => undefined);
      }
    };

    const meter = new RateMeter();
    const report = async (): Promise<void> => {
      const pids = [...active.values()].map((a) => a.pid);
      const { rows } = await this.db.query('SELECT pid, tuples_processed::float8 AS rows FROM pg_stat_progress_copy WHERE pid = ANY ($1)', [pids]);
      const reports: SnapshotPartReport[] = [...active.values()].map((a) => ({
        leaf_schema: a.part.leaf_schema,
        leaf_name: a.part.leaf_name,
        part_no: a.part.part_no,
        rows_written: Number(rows.find((r) => r.pid === a.pid)?.rows ?? 0),
        bytes_written: a.progress.bytes,
      }));
      const rowsNow = doneRows + reports.reduce((s, r) => s + r.rows_written, 0);
      const bytesNow = doneBytes + reports.reduce((s, r) => s + r.bytes_written, 0);
      meter.update(rowsNow, bytesNow);
      const { state } = await reportSnapshotParts(this.db, this.id, reports, {
        rows_per_second: Math.round(meter.rowsPerSecond),
        bytes_per_second: Math.round(meter.bytesPerSecond),
        eta_seconds: meter.rowsPerSecond > 0 ? Math.ceil(Math.max(0, rowsEstimate - rowsNow) / meter.rowsPerSecond) : null,
        workers_active: active.size,
      });
      if (state !== 'generating') throw new Stopped(`the snapshot is ${state}`);
    };

    this.log('info', 'snapshot.write_started', { parts: queue.length, workers, snapshot: snapshotName });
    await runLanes({ lanes: workers, signals: [this.ctx.cancel, this.ctx.shutdown], everyMs: pollMs, lane: worker, report });
    this.checkpoint();
    await reportSnapshotParts(this.db, this.id, [], { workers_active: 0, eta_seconds: 0 });
  }

  // Step 5: what the manifest says of the source is read in the snapshot's
  // transaction (the tables' fingerprints and columns as of it); the
  // sequences are read as they are now (they do not roll back, and an
  // apply sets them from the source again once it streams).
  private async finish(): Promise<void> {
    const meta = this.meta!;
    const dir = this.status.output_dir;
    const tables = await this.publicationTables();
    const parts = await listSnapshotParts(this.db, this.id);

    const ddl = (await meta.query('SELECT ddl FROM steep_repl.snapshot_schema_ddl($1) ORDER BY step', [JSON.stringify(tables)])).rows.map((r) => `${r.ddl};\n`);
    const schemaText =
      `-- steep-repl snapshot ${this.id}: the tables of source node ${this.status.source_node_id} at LSN ${this.status.consistent_lsn}\n` +
      `-- (from their fingerprint definitions), then their foreign keys\n${ddl.join('')}`;
    const { rows: fingerprints } = await meta.query('SELECT schema_name, table_name, fingerprint FROM steep_repl.table_fingerprints()');
    const { rows: sequenceRows } = await meta.query(
      `SELECT schemaname AS schema_name, sequencename AS sequence_name, coalesce(last_value, start_value)::text AS last_value,
              last_value IS NOT NULL AS is_called
       FROM pg_sequences WHERE steep_repl.is_user_schema(schemaname) ORDER BY 1, 2`,
    );
    const sequences: ManifestSequence[] = sequenceRows;
    const { rows: [source] } = await meta.query(
      `SELECT (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
              current_setting('server_version_num')::int AS server_version_num, current_setting('server_version') AS server_version,
              current_database() AS dbname`,
    );

    const manifestTables: ManifestTable[] = [];
    for (const table of tables) {
      const plan = await this.tablePlan(table);
      const fingerprint = fingerprints.find((f) => f.schema_name === table.schema_name && f.table_name === table.table_name)?.fingerprint;
      if (!fingerprint) throw new SteepError(`table ${tableLabel(table)} has no fingerprint on the snapshot`);
      const own = parts
        .filter((p) => p.schema_name === table.schema_name && p.table_name === table.table_name)
        .map((p) => ({
          ...partPlace(p),
          rows: Number(p.rows),
          raw_bytes: Number(p.raw_bytes),
          stored_bytes: Number(p.stored_bytes),
          sha256: p.sha256!,
          file: p.file_name,
        }));
      manifestTables.push({
        schema_name: table.schema_name,
        table_name: table.table_name,
        format: plan.format,
        columns: plan.columns,
        fingerprint,
        rows: own.reduce((n, p) => n + p.rows, 0),
        raw_bytes: own.reduce((n, p) => n + p.raw_bytes, 0),
        stored_bytes: own.reduce((n, p) => n + p.stored_bytes, 0),
        parts: own,
      });
    }

    const files: ManifestFile[] = [];
    files.push({ file: schemaFile, ...(await writeFileDurably(dir, schemaFile, schemaText)) });
    files.push({ file: sequencesFile, ...(await writeFileDurably(dir, sequencesFile, `${JSON.stringify({ snapshot_id: this.id, sequences }, null, 2)}\n`)) });
    const body: ManifestBody = {
      format_version: manifestFormat,
      snapshot_id: this.id,
      source: { node_id: this.status.source_node_id, ...source },
      slot_name: this.status.slot_name,
      publication: this.status.publication,
      consistent_lsn: this.status.consistent_lsn!,
      created_at: new Date(this.status.created_at).toISOString(),
      expires_at: new Date(this.status.expires_at).toISOString(),
      compression: this.status.compression,
      workers: Number(this.status.parallel),
      split_tables_larger_than: Number(this.status.split_tables_larger_than),
      max_parts: Number(this.status.max_parts),
      tables: manifestTables,
      sequences,
      files,
      totals: {
        tables: manifestTables.length,
        parts: parts.length,
        rows: manifestTables.reduce((n, t) => n + t.rows, 0),
        raw_bytes: manifestTables.reduce((n, t) => n + t.raw_bytes, 0),
        stored_bytes: manifestTables.reduce((n, t) => n + t.stored_bytes, 0),
      },
    };
    await writeFileDurably(dir, manifestFile, manifestText(body));
    const checksum = manifestChecksum(body);
    await finishSnapshot(this.db, this.id, { ready: { manifest_checksum: checksum } });
    this.held?.release();
    await meta.query('ROLLBACK').catch(() => undefined);
    this.log('info', 'snapshot.written', { output_dir: dir, tables: body.totals.tables, parts: body.totals.parts, rows: body.totals.rows, stored_bytes: body.totals.stored_bytes, manifest_checksum: checksum });
  }

  // Slot and publication go with the failed state (finish_snapshot), then the files.
  private async fail(err: Error): Promise<void> {
    const error = redactSecrets(err.message);
    const hint = (err as SteepError).hint ?? (err as { hint?: string }).hint;
    this.log('error', 'snapshot.generate_failed', { error, hint });
    await finishSnapshot(this.db, this.id, { failed: { error, ...(hint ? { hint: redactSecrets(hint) } : {}) } });
    this.held?.release();
    await this.removeFiles();
  }

  // Only in a directory this generate accepted: a refused one is someone else's.
  private async removeFiles(): Promise<void> {
    if (!this.dirAccepted) return;
    const parts = await listSnapshotParts(this.db, this.id).catch(() => []);
    const removed = await removeSnapshotFiles(this.status.output_dir, parts.map((p) => p.file_name));
    this.log('info', 'snapshot.files_removed', { output_dir: this.status.output_dir, files: removed.removed.length, dir_removed: removed.dirRemoved });
  }

  private checkpoint(): void {
    if (this.ctx.cancel.aborted) throw new Stopped('cancelled');
    if (this.ctx.shutdown.aborted) throw new Stopped('agent stopping');
  }

  private log(level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown> = {}): void {
    this.ctx.logger.log(level, event, { snapshot_id: this.id, job_id: this.ctx.jobId, ...fields });
  }
}
