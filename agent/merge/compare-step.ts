// Step 3 over every table in scope order: compared on the readers, each
// conflict decided by the strategy (a dry run and a merge), the counts and
// sample keys recorded in merge_tables, and for a manual record run every
// conflict with both rows in merge_conflicts. A manual merge whose
// recorded resolutions no longer fit the rows fails here, before anything
// is written.
import type { MergeTableReport } from '../../lib/sql/recordMergeTable';
import { recordMergeTable } from '../../lib/sql/recordMergeTable';
import { Plan } from './checks';
import { compareTable, sampleKeys } from './compare-tables';
import { recordConflicts } from './conflicts';
import { MergeContext } from './context';
import { ExchangeTable } from './exchange';
import { decide, Decisions, loadResolutions, unapplicableError } from './strategy';

const noDecisions = (): Decisions => ({ winsA: [], winsB: [], rows: new Map() });

export async function compareAll(m: MergeContext, plan: Plan): Promise<ExchangeTable[]> {
  const { run, progress } = m;
  const readers = m.readers!;
  const n = plan.tables.length;
  const out: ExchangeTable[] = [];
  const unapplicable = { count: 0, first: undefined as string | undefined };
  for (const [i, p] of plan.tables.entries()) {
    m.checkpoint();
    const startedAt = Date.now();
    progress.currentTable = p.table.label;
    progress.fraction = i / n;
    await recordMergeTable(m.control, m.id, p.table, { status: 'comparing', started_at: new Date() });
    const diff = await compareTable(readers, { a: run.node_a, b: run.node_b }, p, {
      signal: m.signal,
      onProgress: (c) => (progress.fraction = (i + (0.9 * c.rangesDone) / Math.max(1, c.rangesTotal)) / n),
    });
    let decisions = noDecisions();
    const notes: string[] = p.note ? [p.note] : [];
    if ((run.mode === 'dry_run' || run.mode === 'merge') && run.strategy) {
      const resolutionsOf = run.options.resolutions_of;
      const decided = await decide({
        strategy: run.strategy,
        conflicts: diff.conflicts,
        readerA: readers.a,
        readerB: readers.b,
        ex: p.ex,
        column: run.options.column,
        resolutions: run.strategy === 'manual' && resolutionsOf ? await loadResolutions(m.control, resolutionsOf, p.table) : undefined,
      });
      decisions = decided;
      if (decided.unapplicable.count) {
        if (run.mode === 'merge') {
          unapplicable.count += decided.unapplicable.count;
          unapplicable.first ??= `${p.table.label} ${decided.unapplicable.first}`;
        } else {
          const left = decided.unapplicable.count;
          notes.push(`${left === 1 ? '1 conflict has' : `${left} conflicts have`} no resolution that fits its rows: a manual merge would leave them to you`);
        }
      }
    }
    const both = decisions.rows.size;
    const report: MergeTableReport = {
      status: 'compared',
      rows_a: diff.rowsA,
      rows_b: diff.rowsB,
      rows_identical: diff.identical,
      rows_only_a: diff.onlyA.length,
      rows_only_b: diff.onlyB.length,
      rows_conflicting: diff.conflicts.length,
      conflicts_won_a: decisions.winsA.length,
      conflicts_won_b: decisions.winsB.length,
      // what the strategy writes on each node (a dry run: would write)
      rows_to_a: run.mode === 'analyze' || run.mode === 'record' ? 0 : diff.onlyB.length + decisions.winsB.length + both,
      rows_to_b: run.mode === 'analyze' || run.mode === 'record' ? 0 : diff.onlyA.length + decisions.winsA.length + both,
      sample_keys: sampleKeys(diff),
      note: notes.length ? notes.join('; ') : null,
      ...(run.mode === 'merge' ? {} : { finished_at: new Date() }),
    };
    if (run.mode === 'record' && diff.conflicts.length) {
      await recordConflicts(m.control, m.id, p.table, 'conflict', diff.conflicts, readers.a, readers.b, p.ex);
    }
    await recordMergeTable(m.control, m.id, p.table, report);
    const t = progress.totals;
    t.rows_identical += diff.identical;
    t.rows_only_a += diff.onlyA.length;
    t.rows_only_b += diff.onlyB.length;
    t.rows_conflicting += diff.conflicts.length;
    // a merge counts what it wrote, from its exchange on; a dry run what it would write
    if (run.mode === 'dry_run') {
      t.rows_to_a += report.rows_to_a!;
      t.rows_to_b += report.rows_to_b!;
    }
    progress.tablesDone = i + 1;
    m.log('info', 'merge.table_compared', {
      table: p.table.label,
      rows_a: diff.rowsA,
      rows_b: diff.rowsB,
      identical: diff.identical,
      only_a: diff.onlyA.length,
      only_b: diff.onlyB.length,
      conflicting: diff.conflicts.length,
      won_a: decisions.winsA.length,
      won_b: decisions.winsB.length,
      seconds: (Date.now() - startedAt) / 1000,
    });
    out.push({ p, diff, decisions });
  }
  progress.fraction = 1;
  if (unapplicable.count) throw unapplicableError(unapplicable.count, unapplicable.first!, run.options.resolutions_of);
  return out;
}
