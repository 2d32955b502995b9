// node merge as a DBA runs it: real CLI processes against two real
// PostgreSQL 18 nodes that both hold data (shared rows, rows only on each,
// conflicts), registered with each other, node A's agent doing the work.
// Bad arguments exit 2 and change nothing; Ctrl+C cancels a queued run
// (exit 4); --analyze --json counts exactly; a schema difference fails the
// merge (exit 3) with both nodes untouched; prefer-a merges (exit 0), and
// node status / node list show the last merge. The live view of a node in
// a merge (its share driven through merge_node_begin / merge_node_step, no
// agent) in a real terminal: the row, the overlay, C cancelling it.
import * as path from 'node:path';
import { packageRoot } from '../lib/paths';
import { clusterA, clusterB, dropDatabase, query } from './support/clusters';
import { contentHashes } from './support/content-hash';
import { createNodeDb, dropReplicationObjects, NodeDb, registerPair } from './support/node-pair';
import { AgentProcess, runCli, startCli } from './support/processes';
import { TmuxSession } from './support/tmux';
import { waitUntil } from './support/wait';

jest.setTimeout(120000);

const aId = 'merge_cli A';
const bId = 'merge_cli "B"';
const tables = ['public.items', '"Sales ünit"."Odd ""T"""'];

const schemaSql = `
  CREATE SCHEMA "Sales ünit";
  CREATE TABLE public.items (id int PRIMARY KEY, name text NOT NULL);
  CREATE TABLE "Sales ünit"."Odd ""T""" (id bigint PRIMARY KEY, label text);
`;
// items: 1..300 on A, 101..400 on B; of the 200 shared, every tenth differs
// (20 conflicts, 180 identical). Odd T: 50 identical rows.
const dataA = `
  INSERT INTO public.items SELECT g, 'item ' || g FROM generate_series(1, 300) g;
  INSERT INTO "Sales ünit"."Odd ""T""" SELECT g, 'odd ' || g FROM generate_series(1, 50) g;
`;
const dataB = `
  INSERT INTO public.items SELECT g, CASE WHEN g % 10 = 0 THEN 'b item ' ELSE 'item ' END || g FROM generate_series(101, 400) g;
  INSERT INTO "Sales ünit"."Odd ""T""" SELECT g, 'odd ' || g FROM generate_series(1, 50) g;
`;

const runJs = path.join(packageRoot, 'bin', 'run.js');
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

// What a refused or read-only command must leave as it was: states, progress rows, runs, jobs, replication objects.
async function nodeState(db: NodeDb): Promise<unknown> {
  const [row] = await query(
    db.url,
    `SELECT (SELECT json_agg(json_build_object('node_id', node_id, 'state', init_state) ORDER BY node_id) FROM steep_repl.nodes) AS states,
            (SELECT count(*)::int FROM steep_repl.init_progress) AS progress,
            (SELECT count(*)::int FROM steep_repl.merge_runs) AS merge_runs,
            (SELECT count(*)::int FROM graphile_worker.jobs WHERE key LIKE 'merge:%') AS jobs,
            (SELECT count(*)::int FROM pg_publication) AS publications,
            (SELECT count(*)::int FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())) AS subscriptions,
            (SELECT count(*)::int FROM pg_replication_slots WHERE database = current_database()) AS slots`,
  );
  return row;
}

describe('node merge', () => {
  let a: NodeDb;
  let b: NodeDb;
  let agent: AgentProcess | undefined;
  let tui: TmuxSession | undefined;
  const cli = (...args: string[]) => runCli([...args, '--db', a.url]);
  const states = async () => ({ a: await nodeState(a), b: await nodeState(b) });
  const hashes = async () => ({ a: await contentHashes(a.url, tables), b: await contentHashes(b.url, tables) });

  beforeAll(async () => {
    [a, b] = await Promise.all([createNodeDb(clusterA(), 'merge_cli_a', aId), createNodeDb(clusterB(), 'merge_cli_b', bId)]);
    await registerPair(a, b);
    await Promise.all([query(a.url, schemaSql + dataA), query(b.url, schemaSql + dataB)]);
  });
  afterAll(async () => {
    tui?.kill();
    await agent?.stop('SIGKILL');
    if (a && b) {
      await dropReplicationObjects([a, b]);
      await dropDatabase(a.cluster, a.name).catch(() => undefined);
      await dropDatabase(b.cluster, b.name).catch(() => undefined);
    }
  });

  it('bad arguments exit 2 and change nothing', async () => {
    const before = await states();
    const data = await hashes();
    const cases: Array<[string[], RegExp]> = [
      [['node', 'merge', aId, aId, '--analyze'], /node-a and node-b are both merge_cli A: a merge needs two nodes/],
      [['node', 'merge', aId, bId], /say what to do: --analyze, --strategy/],
      [['node', 'merge', aId, bId, '--analyze', '--strategy', 'prefer-a'], /--analyze and --strategy cannot be used together/],
      [['node', 'merge', aId, bId, '--strategy', 'prefer-c'], /Expected --strategy=prefer-c to be one of: prefer-a, prefer-b, last-modified, manual/],
      [['node', 'merge', aId, bId, '--dry-run'], /--dry-run shows what a strategy would write: give --strategy/],
      [['node', 'merge', aId, bId, '--apply', '--strategy', 'prefer-b'], /--apply applies a manual merge's resolutions/],
      [['node', 'merge', aId, bId, '--apply', '--dry-run'], /--apply and --dry-run cannot be used together/],
      [['node', 'merge', aId, bId, '--apply', '--analyze'], /--apply and --analyze cannot be used together/],
      [['node', 'merge', aId, bId, '--strategy', 'last-modified', '--dry-run'], /--strategy last-modified needs --column <name>/],
      [['node', 'merge', aId, bId, '--strategy', 'prefer-a', '--column', 'name', '--dry-run'], /--column names the timestamp column of --strategy last-modified/],
      [['node', 'merge', aId, bId, '--analyze', '--quiesce'], /--quiesce checks that neither node was written/],
      [['node', 'merge', aId, bId, '--strategy', 'manual', '--quiesce'], /--quiesce checks that neither node was written/],
      [['node', 'merge', aId, bId, '--analyze', '--tables', 'public.items', '--schema', 'public'], /--tables and --schema cannot be used together/],
      [['node', 'merge', aId, bId, '--analyze', '--tables', 'public.items,,x'], /an empty table name/],
      [['node', 'merge', aId, bId, '--cancel', '--analyze'], /--cancel cancels the merge under way on merge_cli A; it takes no --analyze/],
      // no terminal and no --yes: refused before anything is asked or started
      [['node', 'merge', aId, bId, '--strategy', 'prefer-a'], /node merge writes on merge_cli A and merge_cli "B": confirm it on a terminal, or pass --yes/],
      [['node', 'merge', aId, bId, '--apply'], /confirm it on a terminal, or pass --yes/],
      // refused by start_merge, before anything is written
      [['node', 'merge', aId, 'nobody', '--analyze'], /nobody/],
      [['node', 'merge', aId, bId, '--analyze', '--tables', 'public.nope'], /nope/],
      [['node', 'merge', aId, bId, '--strategy', 'last-modified', '--column', 'name', '--dry-run'], /name/],
      [['node', 'merge', aId, bId, '--analyze', '--timeout', '0'], /option timeout must be from 1 to 86400 seconds/],
      [['node', 'merge', aId, bId, '--analyze', '--timeout', 'soon'], /option timeout must be a number of seconds or an interval/],
    ];
    for (const [args, message] of cases) {
      const result = await cli(...args);
      expect({ args, code: result.code, stdout: result.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(result.stderr).toMatch(message);
    }
    expect(await states()).toEqual(before);
    expect(await hashes()).toEqual(data);
  });

  it('Ctrl+C cancels a run waiting for its agent: exit 4, the run cancelled, nothing changed', async () => {
    const before = await states();
    const run = startCli(['node', 'merge', aId, bId, '--analyze', '--db', a.url]);
    await waitUntil('the run started', () => /analyzing merge_cli A and merge_cli "B": 2 tables \(merge \d+\)/.test(run.stderr), 20000, 100);
    run.child.kill('SIGINT');
    const result = await run.result;
    expect(result.stderr).toMatch(/cancelling merge \d+ of merge_cli A and merge_cli "B"\.\.\. \(Ctrl\+C again to stop waiting/);
    expect(result.stderr).toMatch(/analysis \d+ of merge_cli A and merge_cli "B" cancelled; nothing was written on the nodes/);
    expect(result.code).toBe(4);
    const [last] = await query(a.url, 'SELECT state FROM steep_repl.merge_runs ORDER BY merge_id DESC LIMIT 1');
    expect(last.state).toBe('cancelled');
    const after = (await states()) as { a: { merge_runs: number } };
    expect({ ...after, a: { ...after.a, merge_runs: after.a.merge_runs - 1 } }).toEqual(before);
  });

  it('the live view of a node in a merge: its row, the overlay, C cancels it through cancel_init', async () => {
    // B's share of a merge as the job drives it (no run on B's database: it lives on A's)
    const merge = { merge_id: 9001, coordinator: aId, role: 'b', strategy: 'prefer-a', tables_total: 2 };
    await query(b.url, 'SELECT steep_repl.merge_node_begin($1, $2, $3)', [bId, aId, merge]);
    await query(b.url, "SELECT steep_repl.merge_node_step($1, 9001, 'comparing', 'copying', $2)", [bId, { phase: 'copying', overall_percent: 42, tables_done: 1, tables_total: 2 }]);

    try {
      const status = await runCli(['node', 'status', bId, '--db', b.url]);
      expect(status.stdout).toMatch(/^init\s+merge ↔ merge_cli A 42%$/m);
      expect(status.stdout).toMatch(/^merge\s+9001 with merge_cli A \(node B; merge_cli A coordinates, prefer-a\): copying 42% \(step comparing\)$/m);
      const list = await runCli(['node', 'list', '--db', b.url]);
      expect(list.stdout).toMatch(/merge_cli "B" \*.*copying\s+merge ↔ merge_cli A 42%/);

      tui = new TmuxSession(
        'merge-tui',
        `${shellQuote(process.execPath)} ${shellQuote(runJs)} tui --db ${shellQuote(b.url)} --node ${shellQuote(bId)}; echo "TUI-EXIT rc=$?"; sleep 600`,
      );
      let screen = await tui.waitFor(/COPYING.*merge 42%/, 20000, 'B merging at 42%');
      expect(screen).toMatch(/merge_cli "B" \*\s+COPYING\s+↔ merge_cli\S*\s+\S+\s+merge 42%/);
      expect(screen).toMatch(/merge_cli "B": copying · merge 9001 ↔ merge_cli A \(prefer-a\) · step comparing · tables 1\/2/);
      tui.sendKeys('Enter');
      screen = await tui.waitFor(/Merge {3}9001/, 20000, 'the merge in the overlay');
      expect(screen).toMatch(/merge_cli "B" ↔ merge_cli A · merge · COPYING/);
      expect(screen).toMatch(/Merge {3}9001 with merge_cli A \(node B, merge_cli A coordinates\) · prefer-a · step comparing/);
      tui.sendKeys('Escape');
      // an Escape with a key right after it reads as Alt+key
      await tui.waitFor((s) => !/Merge {3}9001/.test(s), 20000, 'the overlay closed');
      tui.sendKeys('C');
      await tui.waitFor(/Cancel the merge with merge_cli A of merge_cli "B"\? y\/n/, 20000, 'the cancel question');
      tui.sendKeys('y');
      await tui.waitFor(/cancel of merge_cli "B" requested/, 20000, 'the cancel requested');
      const [row] = await query(b.url, 'SELECT cancel_requested_at FROM steep_repl.init_progress WHERE node_id = $1', [bId]);
      expect(row.cancel_requested_at).not.toBeNull();
      tui.sendKeys('q');
      expect(await tui.waitFor(/TUI-EXIT rc=\d+/, 20000)).toMatch(/TUI-EXIT rc=0/);
    } finally {
      // as the job ends a cancelled share: B uninitialized again, for the merges below
      await query(b.url, "SELECT steep_repl.merge_node_finish($1, 9001, 'cancelled')", [bId]);
    }
  });

  it('--analyze --json: the exact counts and sample keys, exit 0, nothing written', async () => {
    agent = await AgentProcess.start(a.url);
    const before = await states();
    const data = await hashes();
    const result = await cli('node', 'merge', aId, bId, '--analyze', '--json');
    expect(result.stderr).not.toMatch(/error/);
    expect(result.code).toBe(0);
    const run = JSON.parse(result.stdout);
    expect(run).toMatchObject({ node_a: aId, node_b: bId, mode: 'analyze', state: 'analyzed', rows_identical: 230, rows_only_a: 100, rows_only_b: 100, rows_conflicting: 20 });
    const items = run.tables.find((t: { label: string }) => t.label === 'public.items');
    expect(items).toMatchObject({ rows_a: 300, rows_b: 300, rows_identical: 180, rows_only_a: 100, rows_only_b: 100, rows_conflicting: 20 });
    expect(items.sample_keys.only_a[0]).toEqual({ id: 1 });
    expect(items.sample_keys.only_b[0]).toEqual({ id: 301 });
    expect(items.sample_keys.conflicting[0]).toEqual({ id: 110 });
    expect(run.tables.find((t: { label: string }) => t.label === tables[1])).toMatchObject({ rows_identical: 50, rows_only_a: 0, rows_only_b: 0, rows_conflicting: 0 });

    const text = await cli('node', 'merge', aId, bId, '--analyze', '--tables', 'public.items');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^analysis \d+ of merge_cli A and merge_cli "B": 1 table: 180 rows identical, 100 only on merge_cli A, 100 only on merge_cli "B", 20 conflicts$/m);
    expect(text.stdout).toMatch(/^public\.items\s+300\s+300\s+180\s+100\s+100\s+20\s*$/m);
    expect(text.stdout).toMatch(/^ {2}conflicting \(20\): \(id=110\), \(id=120\), .*, … 10 more$/m);

    const after = (await states()) as { a: { merge_runs: number } };
    expect({ ...after, a: { ...after.a, merge_runs: after.a.merge_runs - 2 } }).toEqual(before);
    expect(await hashes()).toEqual(data);
  });

  it('a merge the schemas refuse fails with exit 3 and leaves both nodes as they were', async () => {
    await query(b.url, 'ALTER TABLE public.items ALTER COLUMN name TYPE varchar(40)');
    try {
      const before = await states();
      const data = await hashes();
      const result = await cli('node', 'merge', aId, bId, '--strategy', 'prefer-a', '--yes');
      expect(result.code).toBe(3);
      expect(result.stderr).toMatch(/^error: merge \d+ of merge_cli A and merge_cli "B" \(prefer-a\) failed: .*public\.items/m);
      const after = (await states()) as { a: { merge_runs: number } };
      expect({ ...after, a: { ...after.a, merge_runs: after.a.merge_runs - 1 } }).toEqual(before);
      expect(await hashes()).toEqual(data);
    } finally {
      await query(b.url, 'ALTER TABLE public.items ALTER COLUMN name TYPE text');
    }
  });

  it('--strategy manual records the conflicts (exit 0, what to do next); --apply is refused while they are unresolved (exit 2)', async () => {
    const data = await hashes();
    const record = await cli('node', 'merge', aId, bId, '--strategy', 'manual', '--tables', 'public.items');
    expect(record.stderr).not.toMatch(/error/);
    expect(record.code).toBe(0);
    const id = /^manual merge (\d+) of /m.exec(record.stdout)?.[1];
    expect(record.stdout).toMatch(new RegExp(`^20 conflicts recorded in steep_repl\\.merge_conflicts \\(merge ${id}\\), each with both rows`, 'm'));
    expect(record.stdout).toMatch(/^then merge with them: steep-repl node merge 'merge_cli A' 'merge_cli "B"' --apply$/m);
    const apply = await cli('node', 'merge', aId, bId, '--apply', '--yes');
    expect(apply.code).toBe(2);
    expect(apply.stderr).toMatch(/20/);
    expect(await hashes()).toEqual(data);
  });

  it('prefer-a merges: exit 0, both nodes equal and synchronized, node status and node list show the last merge', async () => {
    const result = await cli('node', 'merge', aId, bId, '--strategy', 'prefer-a', '--yes');
    expect(result.stderr).not.toMatch(/error/);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^merge_cli A and merge_cli "B" are merged \(merge \d+, prefer-a\): 100 rows written on merge_cli A, 120 on merge_cli "B"; both synchronized, replicating both ways$/m);
    expect(result.stdout).toMatch(/^public\.items\s+300\s+300\s+180\s+100\s+100\s+20\s+100\s+120\s+equal/m);
    const h = await hashes();
    expect(h.b).toEqual(h.a);
    const [items] = await query(b.url, "SELECT count(*)::int AS n, count(*) FILTER (WHERE name LIKE 'b item%' AND id <= 300)::int AS b_rows FROM public.items");
    expect(items).toEqual({ n: 400, b_rows: 0 });

    const status = await cli('node', 'status', aId);
    expect(status.stdout).toMatch(/^init state\s+synchronized$/m);
    expect(status.stdout).toMatch(/^last merge\s+\d+ \(merge prefer-a\) merged with merge_cli "B" \d+s ago: 100 rows written on merge_cli A, 120 on merge_cli "B"$/m);
    const json = JSON.parse((await cli('node', 'status', aId, '--json')).stdout);
    // a merged node replicates both ways: no reinit offered (start_reinit refuses it)
    expect(json).toMatchObject({ init_state: 'synchronized', method: 'merge', can_reinit: false });
    expect(json.last_merge).toMatchObject({ state: 'merged', mode: 'merge', strategy: 'prefer-a', peer_node_id: bId, rows_to_a: 100, rows_to_b: 120 });
    const list = await cli('node', 'list');
    expect(list.stdout).toMatch(/merge_cli A \*.*synchronized/);
    // B's database holds no run, only how its share ended
    const onB = await runCli(['node', 'status', bId, '--db', b.url]);
    expect(onB.stdout).toMatch(/^init state\s+synchronized$/m);
    expect(onB.stdout).toMatch(/^last merge\s+\d+ with merge_cli A: synchronized \d+s ago \(the run is in the database of merge_cli A\)$/m);
  });
});
