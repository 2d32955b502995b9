// The direct method's front ends: node start's flags reach start_init (and
// its refusals change nothing), and the parts of a copy show in node start's
// live lines, node progress (text and --json), the live view's data and its
// detail overlay in a real terminal.
//
// First with parts of a real init_status whose figures the test chose: the
// init is started by the CLI, and the parts are planned, taken and reported
// through the SQL calls the agent's copy workers make (plan_init_parts,
// start_init_part, report_init_parts, finish_init_part), with no agent
// running; then on a real direct init the agent copies, to synchronized.
import * as path from 'node:path';
import { bytesPerSecond, eta } from '../lib/format';
import { packageRoot } from '../lib/paths';
import { InitStatus } from '../lib/sql/getInitStatus';
import { partLines, progressLine } from '../cli/init-follow';
import { ClusterWatch, NodeView } from '../tui/cluster-watch';
import { renderInitOverlay } from '../tui/init-overlay';
import { clusterA, clusterB, query } from './support/clusters';
import { createInitPair, InitPair, initStatus } from './support/init-pair';
import { AgentProcess, runCli, stopAllAgents } from './support/processes';
import { registryState } from './support/registry-state';
import { TmuxSession } from './support/tmux';
import { waitUntil } from './support/wait';

jest.setTimeout(180000);

const runJs = path.join(packageRoot, 'bin', 'run.js');
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

// The overlay as the screen would show it: each piece put at its cell (the
// names here are one cell per character).
function overlayText(view: NodeView, width = 120): string {
  const rows: string[][] = [];
  renderInitOverlay(
    {
      put: (x, y, text) => {
        const row = (rows[y] ??= []);
        Array.from(text).forEach((ch, i) => (row[x + i] = ch));
      },
    },
    { x: 0, y: 0, width, height: 40 },
    view,
  );
  return rows.map((row) => Array.from(row, (ch) => ch ?? ' ').join('').trimEnd()).join('\n');
}

// What a refused start must leave as it was: both registries, the queue, the progress rows.
async function stateOf(pair: InitPair): Promise<unknown> {
  const [queued] = await query(
    pair.target.url,
    `SELECT (SELECT count(*)::int FROM graphile_worker.jobs) AS jobs,
            (SELECT count(*)::int FROM steep_repl.init_progress) AS progress_rows,
            (SELECT count(*)::int FROM steep_repl.init_parts) AS parts`,
  );
  return { target: await registryState(pair.target.url), source: await registryState(pair.source.url), queued };
}

// Planned tables (report_init_progress) and their parts (plan_init_parts) as
// the agent records them: public.accounts by key in 4 parts, the
// partitioned public.events by leaf, the others whole.
const plannedTables = [
  { schema_name: 'Sales ünit', table_name: 'Order "Items" é', state: 'pending', rows_total: 10000, bytes_total: 1 << 20 },
  { schema_name: 'public', table_name: 'accounts', state: 'pending', rows_total: 20000, bytes_total: 8 << 20 },
  { schema_name: 'public', table_name: 'docs', state: 'pending', rows_total: 3, bytes_total: 3 << 20 },
  { schema_name: 'public', table_name: 'events', state: 'pending', rows_total: 10000, bytes_total: 3 << 20 },
  { schema_name: 'public', table_name: 'slow', state: 'pending', rows_total: 1, bytes_total: 8192 },
];
const whole = (schema: string, table: string, leaf = table, rows = 1000) => ({
  schema_name: schema, table_name: table, leaf_schema: schema, leaf_name: leaf, part_no: 1, part_count: 1,
  split: 'whole', key_column: null, range_start: null, range_end: null, bytes_estimate: 1 << 20, rows_estimate: rows,
});
const plannedParts = [
  ...[1, 2, 3, 4].map((k) => ({
    schema_name: 'public', table_name: 'accounts', leaf_schema: 'public', leaf_name: 'accounts', part_no: k, part_count: 4,
    split: 'key', key_column: 'id', range_start: k === 1 ? null : (k - 1) * 5000 + 1, range_end: k === 4 ? null : k * 5000 + 1,
    bytes_estimate: 2 << 20, rows_estimate: 5000,
  })),
  whole('Sales ünit', 'Order "Items" é', 'Order "Items" é', 10000),
  whole('public', 'docs', 'docs', 3),
  whole('public', 'events', 'events_1', 2500),
  whole('public', 'events', 'events_2', 2500),
  whole('public', 'events', 'events_other', 5000),
  whole('public', 'slow', 'slow', 1),
];

describe('direct: node start flags, parts in the CLI and the live view', () => {
  let pair: InitPair;
  let tui: TmuxSession | undefined;
  let follow: TmuxSession | undefined;
  let watch: ClusterWatch | undefined;

  beforeAll(async () => {
    pair = await createInitPair({ tag: 'direct_fe', sourceCluster: clusterA(), targetCluster: clusterB(), sourceId: 'Direkt "A"', targetId: 'direkt b' });
  });
  afterAll(async () => {
    tui?.kill();
    follow?.kill();
    await watch?.stop();
    await pair?.drop();
  });

  const start = (...flags: string[]) => runCli(['node', 'start', pair.target.id, '--from', pair.source.id, ...flags, '--db', pair.target.url]);
  const options = async () => (await query(pair.target.url, 'SELECT options FROM steep_repl.init_progress WHERE node_id = $1', [pair.target.id]))[0]?.options;
  // The job never started (no agent here): cancel_init removes it and the node is uninitialized at once.
  const cancel = async () => {
    const [{ r }] = await query(pair.target.url, 'SELECT steep_repl.cancel_init($1) AS r', [pair.target.id]);
    expect(r).toMatchObject({ cancelled: true, state: 'uninitialized' });
  };

  it('node start passes --parallel, --large-table-threshold and --max-parts to start_init, as init_options reads them', async () => {
    const started = await start('--method', 'direct', '--parallel', '3', '--large-table-threshold', '64MB', '--max-parts', '8', '--no-wait', '--json');
    expect({ code: started.code, stderr: started.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(started.stdout)).toMatchObject({ method: 'direct', options: { parallel: 3, split_tables_larger_than: 67108864, max_parts: 8 } });
    expect(await options()).toMatchObject({ parallel: 3, split_tables_larger_than: 67108864, max_parts: 8 });
    await cancel();

    // Bytes as a number pass through as well; what is not given takes the method's defaults.
    const bytes = await start('--method', 'direct', '--large-table-threshold', '2097152', '--no-wait');
    expect(bytes.code).toBe(0);
    expect(bytes.stdout).toContain(`initialization of ${pair.target.id} from ${pair.source.id} queued as job`);
    expect(await options()).toMatchObject({ split_tables_larger_than: 2097152, max_parts: 32 });
    await cancel();
    expect((await initStatus(pair.target)).state).toBe('uninitialized');
  });

  // [what, flags, message, hint]: four each, as jest takes a test function's
  // parameter past the row's values for a done callback
  const refusals: Array<[string, string[], RegExp, RegExp | null]> = [
    ['a threshold below 1MB', ['--method', 'direct', '--large-table-threshold', '10kB'], /option split_tables_larger_than must be from 1048576 to \d+ bytes .*got "10kB": out of range/, null],
    ['a threshold that is no size', ['--method', 'direct', '--large-table-threshold', 'huge'], /option split_tables_larger_than must be a whole number of bytes \(or a size such as '64MB'\)/, null],
    ['--max-parts 0', ['--method', 'direct', '--max-parts', '0'], /option max_parts must be a whole number from 1 to 1024, got 0: out of range/, null],
    ['--max-parts 1025', ['--method', 'direct', '--max-parts', '1025'], /option max_parts must be a whole number from 1 to 1024, got 1025: out of range/, null],
    ['--max-parts with snapshot', ['--method', 'snapshot', '--max-parts', '4'], /init option 'max_parts' does not apply to method snapshot/, /hint: method snapshot takes: .*; max_parts is an option of: direct/],
    ['--large-table-threshold with the default method', ['--large-table-threshold', '1GB'], /init option 'split_tables_larger_than' does not apply to method snapshot/, /split_tables_larger_than is an option of: direct/],
    ['--max-parts not a number', ['--method', 'direct', '--max-parts', 'many'], /max-parts/, null],
  ];
  it.each(refusals)('node start refuses %s with exit 2 and changes nothing', async (_what, flags, message, hint) => {
    const before = await stateOf(pair);
    const result = await start(...flags);
    expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 2, stdout: '' });
    expect(result.stderr).toMatch(message);
    if (hint) expect(result.stderr).toMatch(hint);
    expect(await stateOf(pair)).toEqual(before);
    expect((await initStatus(pair.target)).state).toBe('uninitialized');
  });

  it("the live view's init question offers direct, as the node's init_methods marks it available", async () => {
    const [{ available }] = await query(pair.target.url, "SELECT available FROM steep_repl.init_methods WHERE method = 'direct'");
    expect(available).toBe(true);
    tui = new TmuxSession(
      'direct-tui',
      `${shellQuote(process.execPath)} ${shellQuote(runJs)} tui --db ${shellQuote(pair.target.url)} --node ${shellQuote(pair.target.id)}; echo "TUI-EXIT rc=$?"; sleep 600`,
      110,
      34,
    );
    // the node's row read, not only the header: the I key asks about what was read
    await tui.waitFor(/direkt b.*uninitialized/, 20000, "the target's row");
    tui.sendKeys('i');
    await tui.waitFor(/from: \[1\] Direkt "A"/, 10000);
    tui.sendKeys('1');
    await tui.waitFor(/method: \[1\] snapshot  \[2\] direct  \(Esc: no\)/, 10000);
    tui.sendKeys('Escape');
    await tui.waitFor((s) => !/method: \[1\]/.test(s), 10000, 'the question closed');
    expect((await initStatus(pair.target)).state).toBe('uninitialized');
  });

  it('shows parts done/total, one line per active part, bytes/s and ETA while following, in node progress and in the overlay', async () => {
    // node start follows on a real terminal: the overall line and one per part, redrawn in place.
    follow = new TmuxSession(
      'direct-follow',
      `${shellQuote(process.execPath)} ${shellQuote(runJs)} node start ${shellQuote(pair.target.id)} --from ${shellQuote(pair.source.id)} ` +
        `--method direct --parallel 2 --large-table-threshold 1MB --max-parts 4 --db ${shellQuote(pair.target.url)}; echo "START-EXIT rc=$?"; sleep 600`,
      120,
      20,
    );
    await follow.waitFor(/preparing/, 20000, 'the init followed');
    const node = pair.target.id;
    await query(pair.target.url, "SELECT steep_repl.init_phase($1, 'copying')", [node]);
    await query(pair.target.url, 'SELECT steep_repl.report_init_progress($1, $2)', [node, JSON.stringify(plannedTables)]);
    expect((await query(pair.target.url, 'SELECT steep_repl.plan_init_parts($1, $2) AS n', [node, JSON.stringify(plannedParts)]))[0].n).toBe(10);
    // worker 1 copies accounts part 1 of 4, worker 2 the leaf events_2; the slow table's one part is done
    await query(pair.target.url, "SELECT steep_repl.start_init_part($1, 'public', 'slow', 1, 2)", [node]);
    await query(pair.target.url, "SELECT steep_repl.finish_init_part($1, 'public', 'slow', 1, 1, 8192)", [node]);
    await query(pair.target.url, "SELECT steep_repl.start_init_part($1, 'public', 'accounts', 1, 1)", [node]);
    await query(pair.target.url, "SELECT steep_repl.start_init_part($1, 'public', 'events_2', 1, 2)", [node]);
    const report = (accounts: number, events: number, stats: Record<string, number>) =>
      query(pair.target.url, 'SELECT steep_repl.report_init_parts($1, $2, $3)', [
        node,
        JSON.stringify([
          { leaf_schema: 'public', leaf_name: 'accounts', part_no: 1, rows_copied: accounts, bytes_copied: accounts * 400 },
          { leaf_schema: 'public', leaf_name: 'events_2', part_no: 1, rows_copied: events, bytes_copied: events * 80 },
        ]),
        JSON.stringify({ workers_active: 2, workers_max: 2, ...stats }),
      ]);
    await report(1000, 500, { rows_per_second: 3000, bytes_per_second: 5 * 1024 * 1024, eta_seconds: 62 });

    // init_status: the summary and the active parts, by worker
    const status: InitStatus = await initStatus(pair.target);
    expect(status.parts).toMatchObject({ total: 10, done: 1, resync: 0, copied_twice: 0 });
    expect(status.parts!.active.map((a) => [a.worker, a.label, a.leaf, a.part_no, a.part_count, a.split, a.rows_copied, a.percent])).toEqual([
      [1, 'public.accounts', 'public.accounts', 1, 4, 'key', 1000, 20],
      [2, 'public.events', 'public.events_2', 1, 1, 'whole', 500, 20],
    ]);

    // The followed lines: parts done/total, bytes/s and ETA on the overall line, a line per part.
    let screen = await follow.waitFor(/1\/10 parts/, 15000, 'the parts on the overall line');
    expect(screen).toMatch(/copying\s+\d\/5 tables\s+1\/10 parts\s+3\.0k rows\/s\s+5\.0MB\/s\s+2 workers\s+ETA 1m02s/);
    expect(screen).toMatch(/^ {2}worker 1 {2}public\.accounts part 1\/4 {2}\s*20\.0% {2}\d.* rows\/s$/m);
    expect(screen).toMatch(/^ {2}worker 2 {2}public\.events \(public\.events_2\) part 1\/1 {2}\s*20\.0% {2}\d.* rows\/s$/m);

    // Worker 2 finishes its part and takes accounts part 2: the lines are redrawn where they were.
    await query(pair.target.url, "SELECT steep_repl.finish_init_part($1, 'public', 'events_2', 1, 2500, 200000)", [node]);
    await query(pair.target.url, "SELECT steep_repl.start_init_part($1, 'public', 'accounts', 2, 2)", [node]);
    await query(pair.target.url, 'SELECT steep_repl.report_init_parts($1, $2, $3)', [
      node,
      JSON.stringify([
        { leaf_schema: 'public', leaf_name: 'accounts', part_no: 1, rows_copied: 2500, bytes_copied: 1000000 },
        { leaf_schema: 'public', leaf_name: 'accounts', part_no: 2, rows_copied: 250, bytes_copied: 100000 },
      ]),
      JSON.stringify({ rows_per_second: 4000, bytes_per_second: 6 * 1024 * 1024, eta_seconds: 45 }),
    ]);
    screen = await follow.waitFor(/2\/10 parts.*ETA 45s/, 15000, 'the next report');
    expect(screen.split('\n').filter((l) => /\d+\/10 parts/.test(l))).toHaveLength(1);
    expect(screen.split('\n').filter((l) => /^ {2}worker /.test(l))).toEqual([
      expect.stringMatching(/^ {2}worker 1 {2}public\.accounts part 1\/4 {2}\s*50\.0%/),
      expect.stringMatching(/^ {2}worker 2 {2}public\.accounts part 2\/4 {2}\s*5\.0%/),
    ]);

    // node progress --json: init_status as it is, parts included.
    const json = await runCli(['node', 'progress', node, '--json', '--db', pair.target.url]);
    expect(json.code).toBe(0);
    const printed: InitStatus = JSON.parse(json.stdout);
    const now: InitStatus = await initStatus(pair.target);
    const withoutRates = (s: InitStatus) => ({ ...s.parts!, active: s.parts!.active.map(({ rows_per_second: _r, ...a }) => a) });
    expect(withoutRates(printed)).toEqual(withoutRates(now));
    expect(printed.parts).toMatchObject({ total: 10, done: 2 });
    expect(printed.parts!.active.every((a) => Number(a.rows_per_second) > 0)).toBe(true);

    // node progress: the summary line and a row per active part.
    const text = await runCli(['node', 'progress', node, '--db', pair.target.url]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(progressLine(printed));
    expect(text.stdout).toMatch(/2\/10 parts\s+4\.0k rows\/s\s+6\.0MB\/s\s+2 workers\s+ETA 45s/);
    expect(text.stdout).toMatch(/^parts: 2\/10 done$/m);
    expect(text.stdout).toMatch(/^worker\s+copying\s+part\s+split\s+percent\s+rows\s+bytes\s+rows\/s$/m);
    expect(text.stdout).toMatch(/^1\s+public\.accounts\s+1\/4\s+key\s+50\.0%\s+2\.5k\/5\.0k\s+977kB\s+\d/m);
    expect(text.stdout).toMatch(/^2\s+public\.accounts\s+2\/4\s+key\s+5\.0%\s+250\/5\.0k\s+97\.7kB\s+\d/m);
    expect(partLines(printed)).toHaveLength(2);

    // The live view's data: the same parts; the overlay draws a bar per worker, parts done/total, bytes/s, ETA.
    watch = new ClusterWatch({ db: pair.target.url, applicationName: 'steep-repl test direct front ends' });
    await watch.start();
    watch.watchDetail(node);
    const view = await waitUntil('the live view to read the parts', () => {
      const v = watch!.node(node);
      return v?.parts?.done === 2 ? v : undefined;
    }, 10000, 50);
    expect(withoutRates({ parts: view.parts } as InitStatus)).toEqual(withoutRates(now));
    const overlay = overlayText(view);
    expect(overlay).toMatch(/tables \d\/5 {2}parts 2\/10/);
    expect(overlay).toContain(`${bytesPerSecond(6 * 1024 * 1024)}`);
    expect(overlay).toContain(eta(45));
    const bars = overlay.split('\n').filter((l) => / w\d /.test(l));
    expect(bars).toEqual([
      expect.stringMatching(/^│ {3}w1 public\.accounts\s+1\/4 \[█{10,}░+\]\s+50%\s+\S+ rows\/s │$/),
      expect.stringMatching(/^│ {3}w2 public\.accounts\s+2\/4 \[█*░+\]\s+5%\s+\S+ rows\/s │$/),
    ]);
    // the bars keep inside the box
    expect(new Set(overlay.split('\n').map((l) => l.length)).size).toBe(1);

    // And on a real screen: Enter opens the overlay of the selected node.
    tui!.sendKeys('Enter');
    screen = await tui!.waitFor(/w2 public\.accounts\s+2\/4 \[[█░]+\]\s+5%/, 15000, 'a bar for worker 2');
    expect(screen).toContain(`${node} ← ${pair.source.id} · direct · PREPARING`);
    expect(screen).toMatch(/▶ copying/);
    expect(screen).toMatch(/Overall \[[█░]+\]\s+\d+%\s+tables \d\/5 {2}parts 2\/10/);
    expect(screen).toMatch(/ {2}w1 public\.accounts\s+1\/4 \[[█░]+\]\s+50%\s+[\d.]+k? rows\/s/);
    expect(screen).toMatch(/6\.0MB\/s/);
    expect(screen).toMatch(/workers 2\/2 · elapsed \S+ · ETA 45s/);
    expect(screen.split('\n').filter((l) => /Overall \[/.test(l))).toHaveLength(1);

    // Ctrl+C on the followed start cancels it (the job never started): exit 4, the node uninitialized.
    follow.sendKeys('C-c');
    screen = await follow.waitFor(/START-EXIT rc=\d+/, 20000);
    expect(screen).toMatch(/START-EXIT rc=4/);
    expect((await initStatus(pair.target)).state).toBe('uninitialized');
    expect((await query(pair.target.url, 'SELECT count(*)::int AS n FROM steep_repl.init_parts'))[0].n).toBe(0);

    // Once there are no parts the overlay is the tables' one again.
    tui!.sendKeys('Escape');
    await tui!.waitFor((s) => !s.includes('Phases'), 10000, 'the overlay closed');
    tui!.sendKeys('q');
    expect(await tui!.waitFor(/TUI-EXIT rc=\d+/, 10000)).toMatch(/TUI-EXIT rc=0/);
  });
});

// The same displays on a real direct init: the agent plans and copies the
// parts (throttled, so the copy is watched while it runs).
describe('direct: the parts of a real copy while following, in node progress and in the live view', () => {
  let pair: InitPair;
  let tui: TmuxSession | undefined;
  let follow: TmuxSession | undefined;

  beforeAll(async () => {
    pair = await createInitPair({ tag: 'direct_fe_real', sourceCluster: clusterA(), targetCluster: clusterB(), sourceId: 'Echt "A"', targetId: 'echt b' });
    // bytes per second per copy worker: docs (~3 MB of TOAST) takes seconds per part
    await AgentProcess.start(pair.target.url, [], { STEEP_REPL_COPY_MAX_RATE: '120000' });
  });
  afterAll(async () => {
    tui?.kill();
    follow?.kill();
    await stopAllAgents();
    await pair?.drop();
  });

  it('shows a line and a bar per copy worker, parts done/total, bytes/s and ETA until synchronized', async () => {
    const node = pair.target.id;
    tui = new TmuxSession(
      'direct-real-tui',
      `${shellQuote(process.execPath)} ${shellQuote(runJs)} tui --db ${shellQuote(pair.target.url)} --node ${shellQuote(node)}; echo "TUI-EXIT rc=$?"; sleep 600`,
      110,
      34,
    );
    await tui.waitFor(/NODE\s+STATE/, 20000, 'the nodes view');
    tui.sendKeys('Enter');
    follow = new TmuxSession(
      'direct-real-follow',
      `${shellQuote(process.execPath)} ${shellQuote(runJs)} node start ${shellQuote(node)} --from ${shellQuote(pair.source.id)} ` +
        `--method direct --parallel 2 --large-table-threshold 1MB --max-parts 4 --db ${shellQuote(pair.target.url)}; echo "START-EXIT rc=$?"; sleep 600`,
      120,
      20,
    );
    let last: InitStatus | undefined;
    const status: InitStatus = await waitUntil('parts being copied', async () => {
      const s: InitStatus = (last = await initStatus(pair.target));
      return s.parts && s.parts.active.length > 0 && s.progress?.bytes_per_second ? s : undefined;
    }, 60000, 100).catch((err) => {
      throw new Error(`${err.message}; last status: ${JSON.stringify(last)}; node start showed:\n${follow!.capture()}`);
    });
    expect(status.progress!.options).toMatchObject({ parallel: 2, split_tables_larger_than: 1048576, max_parts: 4 });
    expect(status.parts!.total).toBeGreaterThan(status.tables.length);
    const parts = (screen: string) => screen.split('\n').filter((l) => /^ {2}worker [12] {2}\S.* part \d+\/\d+ {2}\s*(\d+\.\d%|-) {2}(\S+ rows\/s|-)$/.test(l));
    let screen = await follow.waitFor((s) => parts(s).length > 0 && /\d+\/\d+ parts .*\/s/.test(s), 20000, 'the part lines while following');
    expect(screen).toMatch(new RegExp(`copying\\s+\\d+/\\d+ tables\\s+\\d+/${status.parts!.total} parts\\s+.*B/s`));

    const json = await runCli(['node', 'progress', node, '--json', '--db', pair.target.url]);
    const printed: InitStatus = JSON.parse(json.stdout);
    expect(printed.parts).toMatchObject({ total: status.parts!.total });
    expect(Array.isArray(printed.parts!.active)).toBe(true);
    const text = await runCli(['node', 'progress', node, '--db', pair.target.url]);
    expect(text.stdout).toMatch(new RegExp(`^parts: \\d+/${status.parts!.total} done`, 'm'));

    screen = await tui.waitFor(/ w[12] \S.*\d+\/\d+ \[[█░]+\]\s+(\d+%|-)\s+(\S+ rows\/s|-)/, 20000, 'a bar per copy worker in the overlay');
    expect(screen).toContain(`${node} ← ${pair.source.id} · direct · COPYING`);
    expect(screen).toMatch(new RegExp(`tables \\d+/\\d+  parts \\d+/${status.parts!.total}`));
    expect(screen).toMatch(/workers \d\/2 · elapsed \S+ · ETA /);

    // To the end: the follow exits 0 once synchronized, every part done.
    screen = await follow.waitFor(/START-EXIT rc=\d+/, 120000, 'node start to end');
    expect(screen).toMatch(/echt b is synchronized with Echt "A"/);
    expect(screen).toMatch(/START-EXIT rc=0/);
    const end: InitStatus = await initStatus(pair.target);
    expect(end.state).toBe('synchronized');
    // Escape and q sent together may arrive as one Alt+q: q only once the overlay closed.
    tui.sendKeys('Escape');
    await tui.waitFor((s) => !s.includes('Phases'), 10000, 'the overlay closed');
    tui.sendKeys('q');
    expect(await tui.waitFor(/TUI-EXIT rc=\d+/, 10000)).toMatch(/TUI-EXIT rc=0/);
  });
});
