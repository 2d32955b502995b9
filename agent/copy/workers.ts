// N copy workers serving one queue of parts, largest first. Each worker
// reads through a PartReader (copy-part.ts: direct's source session on the
// exported snapshot, two-phase's snapshot files) and writes with a target
// session under a replication origin of its own with
// session_replication_role = replica (as an apply worker does: no triggers,
// no foreign-key checks while parts of related tables land in any order).
// While they copy, progress goes to init_parts / init_progress every poll,
// and the source's publication is checked as it is for every method.
import { Client } from 'pg';
import { SteepError } from '../../lib/errors';
import { Part, startInitPart } from '../../lib/sql/initParts';
import { PartReport } from '../../lib/sql/reportInitParts';
import type { InitRun } from '../init/runner';
import { pollMs } from '../init/runner';
import { RateMeter } from '../init/rate-meter';
import { runLanes } from './lanes';
import { publicationProblems, StreamBroken } from '../init/verify-stream';
import { dropSessionOrigin, originSessionEnd, originSessionStart } from '../replication/origin';
import { ColumnPlan, copyPart, PartReader, PartSource } from './copy-part';
import { partLabel } from './parts';
import { isConnectionError } from '../init/failure';
import { tableLabel } from '../../lib/identifiers';
import { shellWord } from '../../lib/format';

interface Active {
  part: Part;
  pid: number;
  progress: { bytes: number };
}

export async function copyParts(run: InitRun, reader: PartReader, parts: Part[], parallel: number): Promise<void> {
  const queue = parts.filter((p) => p.state === 'pending' || p.state === 'copying').sort((a, b) => b.bytes_estimate - a.bytes_estimate);
  if (!queue.length) return;
  const active = new Map<number, Active>();
  const plans = new Map<string, Promise<ColumnPlan>>();
  const workers = Math.min(parallel, queue.length);

  const worker = async (n: number, signal: AbortSignal) => {
    let source: PartSource | undefined;
    let target: Client | undefined;
    try {
      source = await reader.open(n, signal);
      target = await run.connectTarget('steep-repl copy', signal);
      await target.query('SET session_replication_role = replica');
      // a part's COPY takes as long as the part
      await target.query('SET statement_timeout = 0');
      // a crash loses a part's rows together with its done mark: still exact
      await target.query('SET synchronous_commit = off');
      await originSessionStart(target, n);
      for (let part = queue.shift(); part && !signal.aborted; part = queue.shift()) {
        const started = await startInitPart(target, run.nodeId, part, n);
        if (!started) continue;
        const key = `${part.leaf_schema}.${part.leaf_name}`;
        if (!plans.has(key)) plans.set(key, source.columns(part, target));
        const plan = await plans.get(key)!;
        const progress = { bytes: 0 };
        active.set(n, { part, pid: (target as unknown as { processID: number }).processID, progress });
        const t0 = Date.now();
        const copied = await copyPart({ nodeId: run.nodeId, source, target, part, plan, again: started.copies > 1, progress }).catch((err) => {
          throw signal.aborted || isConnectionError(err) ? err : partFailed(run, part!, err);
        });
        active.delete(n);
        if (copied.leftovers) run.log('warn', 'init.part_leftovers_removed', { part: partLabel(part), rows: copied.leftovers });
        run.log('info', 'init.part_copied', {
          part: partLabel(part),
          table: tableLabel(part),
          worker: n,
          rows: copied.rows,
          bytes: copied.bytes,
          binary: plan.binary,
          seconds: (Date.now() - t0) / 1000,
          copies: started.copies,
        });
      }
      await originSessionEnd(target);
      await dropSessionOrigin(target, n);
    } finally {
      active.delete(n);
      await Promise.all([source?.close().catch(() => undefined), target?.end().catch(() => undefined)]);
    }
  };

  const planned = (await run.refresh()).tables;
  const meter = new RateMeter();
  let lastProgress: Awaited<ReturnType<InitRun['reportParts']>> | undefined;
  const report = async (): Promise<void> => {
    const pids = [...active.values()].map((a) => a.pid);
    const { rows } = await run.target.query('SELECT pid, tuples_processed::float8 AS rows FROM pg_stat_progress_copy WHERE pid = ANY ($1)', [pids]);
    const reports: PartReport[] = [...active.values()].map((a) => ({
      leaf_schema: a.part.leaf_schema,
      leaf_name: a.part.leaf_name,
      part_no: a.part.part_no,
      rows_copied: Number(rows.find((r) => r.pid === a.pid)?.rows ?? 0),
      bytes_copied: a.progress.bytes,
    }));
    const progress = await run.reportParts(reports, {
      rows_per_second: Math.round(meter.rowsPerSecond),
      bytes_per_second: Math.round(meter.bytesPerSecond),
      eta_seconds: meter.eta(Number(lastProgress?.bytes_total ?? 0) - Number(lastProgress?.bytes_copied ?? 0)),
      workers_active: active.size,
      workers_max: Math.max(1, Math.min(16, parallel)),
    });
    lastProgress = progress;
    meter.update(Number(progress.rows_copied), Number(progress.bytes_copied));
    const problems = await run.withSource((s) => publicationProblems(s, run, planned));
    if (problems.length) {
      throw new StreamBroken(
        problems.map((p) => `while copying: ${p}`),
        `the copy cannot be trusted: cancel this init and start it again; keep the publication ${run.name} and the source's tables as they are while an init runs`,
      );
    }
  };

  run.log('info', 'init.copy_started', { parts: queue.length, workers, ...reader.describe });
  try {
    await runLanes({ lanes: workers, signals: run.signals, everyMs: pollMs, lane: worker, report });
  } finally {
    run.checkpoint();
  }
  await run.reportParts([], { workers_active: 0 });
}

// What the target refused (a constraint the source's rows break, a column
// it lacks) or the reader found (a file unlike its manifest), named with
// the part; the rows of the part were rolled back.
function partFailed(run: InitRun, part: Part, err: Error & { code?: string; detail?: string }): SteepError {
  const detail = err.detail ? ` (${err.detail})` : '';
  const failed = new SteepError(
    `copying ${partLabel(part)} into ${tableLabel(part)} failed: ${err.message}${detail}`,
    undefined,
    (err instanceof SteepError && err.hint) ||
      `fix the cause on the target (or the source), then resume (steep-repl node start ${shellWord(run.nodeId)} --from ${shellWord(run.sourceNode.node_id)} --resume) or cancel`,
  );
  (failed as SteepError & { code?: string }).code = err.code;
  return failed;
}
