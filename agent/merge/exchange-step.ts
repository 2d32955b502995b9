// Step 4 as the job runs it: both writers open, every table exchanged in
// foreign-key order (exchange.ts), then what blocks a COMMIT: rows the
// exchange could not insert (written on the other node after the merge
// point, or refused by another unique constraint: recorded in
// merge_conflicts as they are now), foreign keys, and with --quiesce any
// change written since the merge point. Then each writer records the step
// 'exchanged' in its own transaction and B commits, then A: a job killed
// between the two resumes past the exchange (run.ts).
import { quoteIdent } from '../../lib/identifiers';
import { mergeNodeStep } from '../../lib/sql/mergeNodeStep';
import { recordMergeTable } from '../../lib/sql/recordMergeTable';
import { Plan, PlannedTable } from './checks';
import { recordConflicts } from './conflicts';
import { MergeContext } from './context';
import { MergeError } from './errors';
import { checkForeignKeys, ExchangeTable, openWriter, TableExchange, TableWrites, Writers } from './exchange';
import { readNodePart } from './node-part';
import { changesSinceMergePoint } from './quiesce';

interface Written {
  p: PlannedTable;
  writes: TableWrites;
}

export async function exchange(m: MergeContext, plan: Plan, tables: ExchangeTable[]): Promise<void> {
  const { progress } = m;
  await progress.enter('exchanging', { run: 'compared', node: 'exchanging' });
  await m.pauseAt('exchanged');
  const readers = m.readers!;
  m.writers = {};
  m.writers.b = await openWriter(m.endpoints.b);
  m.writers.a = await openWriter(m.endpoints.a);
  const writers = m.writers as Writers;
  const byTable = new Map(tables.map((t) => [t.p, t]));
  const total = Math.max(1, tables.reduce((n, t) => n + TableExchange.rowsToWrite(t), 0));
  progress.rowsPlanned = {
    a: tables.reduce((n, t) => n + t.diff.onlyB.length + t.decisions.winsB.length + t.decisions.rows.size, 0),
    b: tables.reduce((n, t) => n + t.diff.onlyA.length + t.decisions.winsA.length + t.decisions.rows.size, 0),
  };
  progress.totals.rows_to_a = 0;
  progress.totals.rows_to_b = 0;
  let done = 0;
  const written: Written[] = [];
  for (const p of plan.writeOrder) {
    m.checkpoint();
    progress.currentTable = p.table.label;
    const t = byTable.get(p)!;
    const before = { a: progress.totals.rows_to_a, b: progress.totals.rows_to_b };
    const te = new TableExchange(readers, writers, t, (n) => {
      done += n;
      progress.fraction = (0.95 * done) / total;
      progress.totals.rows_to_a = before.a + te.writes.toA;
      progress.totals.rows_to_b = before.b + te.writes.toB;
    }, m.signal);
    written.push({ p, writes: await te.run() });
    progress.tablesDone += 1;
  }
  if (written.some((w) => w.writes.blocked.length)) await blocked(m, written);
  await checkForeignKeys(writers, plan.foreignKeys, written, { a: m.run.node_a, b: m.run.node_b });
  if (m.run.options.quiesce) await quiesce(m);
  await m.pauseAt('committing');
  await commit(m, writers);
  await m.closeWriters();
  await m.closeReaders();

  const rowsToA = written.reduce((n, w) => n + w.writes.toA, 0);
  const rowsToB = written.reduce((n, w) => n + w.writes.toB, 0);
  progress.totals.rows_to_a = rowsToA;
  progress.totals.rows_to_b = rowsToB;
  for (const { p, writes } of written) {
    await recordMergeTable(m.control, m.id, p.table, {
      status: 'exchanged',
      rows_to_a: writes.toA,
      rows_to_b: writes.toB,
      rows_changed_during: writes.changedDuring,
      ...(writes.changedDuring
        ? { note: `${writes.changedDuring} losing rows were changed on their node after the merge point: those changes stand and replicate` }
        : {}),
    });
  }
  progress.fraction = 1;
  await progress.send({ step: 'exchanged' });
  m.log('info', 'merge.exchanged', {
    rows_to_a: rowsToA,
    rows_to_b: rowsToB,
    rows_changed_during: written.reduce((n, w) => n + w.writes.changedDuring, 0),
  });
}

// Rows the exchange could not insert: nothing is committed; they are
// recorded with both rows as they are now, and the run fails.
async function blocked(m: MergeContext, written: Written[]): Promise<never> {
  const writers = m.writers as Writers;
  await Promise.all([writers.a.query('ROLLBACK'), writers.b.query('ROLLBACK')]);
  // the writers, rolled back, read the nodes as they are now
  for (const { p, writes } of written) {
    for (const b of writes.blocked) await recordConflicts(m.control, m.id, p.table, b.kind, b.keys, writers.a, writers.b, p.ex);
  }
  const all = written.flatMap((w) => w.writes.blocked.map((b) => ({ ...b, p: w.p })));
  const first = all.find((b) => b.kind === 'concurrent') ?? all[0];
  const node = quoteIdent(first.node === 'a' ? m.run.node_a : m.run.node_b);
  const count = first.keys.length;
  const others = all.filter((b) => b !== first).reduce((n, b) => n + b.keys.length, 0);
  const more = others ? ` (and ${rows(others)} more that could not be written; steep_repl.merge_conflicts of merge ${m.id} lists them all)` : '';
  if (first.kind === 'concurrent') {
    throw new MergeError(
      `${rows(count)} of ${first.p.table.label} ${count === 1 ? 'was' : 'were'} written on node ${node} during the merge (first key ${first.keys[0]})${more}: ` +
        'nothing was exchanged; run the merge again (it resolves them by the strategy) or use --quiesce',
      'concurrent',
      `SELECT * FROM steep_repl.merge_conflicts WHERE merge_id = ${m.id} shows them with both rows`,
    );
  }
  throw new MergeError(
    `${rows(count)} of ${first.p.table.label} ${count === 1 ? 'violates' : 'violate'} a unique constraint on node ${node} (first key ${first.keys[0]})${more}: ` +
      'nothing was exchanged; change or delete one of the rows',
    'concurrent',
    `SELECT * FROM steep_repl.merge_conflicts WHERE merge_id = ${m.id} AND kind = 'unique' shows them with both rows`,
  );
}

const rows = (n: number) => (n === 1 ? '1 row' : `${n} rows`);

async function quiesce(m: MergeContext): Promise<void> {
  const onA = await changesSinceMergePoint(m.control, m.names.ab, m.names.ab);
  const onB = await m.peer.run((b) => changesSinceMergePoint(b, m.names.ba, m.names.ba));
  if (!onA && !onB) return;
  const changes = (n: number) => (n === 1 ? '1 change was' : `${n} changes were`);
  const where = onA && onB ? `${changes(onA)} written on node ${m.a} and ${onB} on node ${m.b}` : `${changes(onA || onB)} written on node ${onA ? m.a : m.b}`;
  throw new MergeError(
    `${where} during the merge; stop the application's writes, or merge online (without --quiesce): nothing was exchanged`,
    'quiesce',
    'with --quiesce a merge only commits when nothing was written to the merged tables since its merge point',
  );
}

// The point of no return. Node ticks are held: the step 'exchanged' each
// writer records must not be overwritten by a tick waiting on its row.
async function commit(m: MergeContext, writers: Writers): Promise<void> {
  const { progress } = m;
  await progress.hold();
  try {
    for (const [node, id] of [['b', m.run.node_b], ['a', m.run.node_a]] as const) {
      // as origin again, so that init_progress's triggers announce the step
      await writers[node].query('SET LOCAL session_replication_role = origin');
      await mergeNodeStep(writers[node], id, m.id, 'exchanged', null, { ...progress.nodeProgress(node), error: null });
    }
    try {
      await writers.b.query('COMMIT');
    } catch (err) {
      // a COMMIT whose answer was lost may have happened: B's step says
      const step = await m.peer.run((b) => readNodePart(b, m.run.node_b)).catch(() => undefined);
      if (!(step?.merge_id === m.id && step?.step === 'exchanged')) throw err;
    }
    m.exchanged = true;
    progress.step = 'exchanged';
    progress.nodeStep = 'exchanged';
    await writers.a.query('COMMIT');
  } finally {
    progress.release();
  }
}
