// The live view and the demo in a real terminal (tmux), against real nodes,
// a real agent and a real snapshot initialization.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { claimRunDir, cleanStaleRuns, clusterRoot, createCluster, Cluster, removeRun, startCluster, stopCluster } from '../lib/embedded-cluster';
import { clusterA, clusterB, createDatabase, createNodeDatabase, dropDatabase, query } from './support/clusters';
import { AgentProcess, runCli, stopAllAgents } from './support/processes';
import { dropReplicationObjects } from './support/init-pair';
import { TmuxSession } from './support/tmux';
import { stringWidth } from 'terminal-kit';
import { packageRoot } from '../lib/paths';

const runJs = path.join(packageRoot, 'bin', 'run.js');
const node = process.execPath;
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

// Names that need quoting everywhere they go.
const sourceId = 'Quelle "A"';
const targetId = 'Ziel b';
const bigTable = 'Order Lines';
const rowsToCopy = 20000;

// Command lines of running processes that mention a directory.
function postgresFor(dir: string): string[] {
  return fs
    .readdirSync('/proc')
    .filter((pid) => /^\d+$/.test(pid))
    .map((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        return '';
      }
    })
    .filter((cmd) => cmd.includes(dir));
}

// Run directories of the demo (one per run, removed when it stops).
const demoRuns = () => (fs.existsSync(clusterRoot('demo')) ? fs.readdirSync(clusterRoot('demo')).sort() : []);

function nodeRow(screen: string, id: string): string {
  return screen.split('\n').find((line) => line.slice(1).startsWith(id) && /UNINITIALIZED|PREPARING|COPYING|CATCHING_UP|SYNCHRONIZED|FAILED/.test(line)) ?? '';
}

function percentOf(row: string): number | undefined {
  const m = /COPYING\s.*?(\d+)%/.exec(row);
  return m ? Number(m[1]) : undefined;
}

describe('steep-repl tui', () => {
  let source: { name: string; url: string };
  let target: { name: string; url: string };
  let tui: TmuxSession | undefined;

  beforeAll(async () => {
    [source, target] = await Promise.all([createNodeDatabase(clusterA(), 'tui_src'), createNodeDatabase(clusterB(), 'tui_tgt')]);
    const ddl = `CREATE TABLE "${bigTable}" (id bigint PRIMARY KEY, note text NOT NULL);
                 CREATE TABLE "select" (id int PRIMARY KEY, label text)`;
    await query(source.url, ddl);
    await query(target.url, ddl);
    await query(
      source.url,
      `INSERT INTO "${bigTable}" SELECT g, repeat('x', 40) || g FROM generate_series(1, ${rowsToCopy}) g;
       INSERT INTO "select" SELECT g, 'label ' || g FROM generate_series(1, 10) g;
       ANALYZE`,
    );
    // The copy must last long enough to be watched and cancelled: every row
    // the table-sync worker writes waits a millisecond (ALWAYS: also in replica mode).
    await query(
      target.url,
      `CREATE FUNCTION slow_copy() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.001); RETURN NEW; END $$;
       CREATE TRIGGER slow_copy BEFORE INSERT ON "${bigTable}" FOR EACH ROW EXECUTE FUNCTION slow_copy();
       ALTER TABLE "${bigTable}" ENABLE ALWAYS TRIGGER slow_copy`,
    );
    for (const [db, local] of [
      [source, sourceId],
      [target, targetId],
    ] as const) {
      for (const [id, cluster, dbname] of [
        [sourceId, clusterA(), source.name],
        [targetId, clusterB(), target.name],
      ] as const) {
        await query(db.url, 'SELECT steep_repl.register_node($1, $2, $3, $4, $5, 50, NULL, $6)', [
          id,
          cluster.host,
          cluster.port,
          dbname,
          cluster.user,
          id === local,
        ]);
      }
    }
    const agents = [new AgentProcess(source.url), new AgentProcess(target.url)];
    await Promise.all(agents.map((a) => a.waitForEvent('agent.started')));
  });

  afterAll(async () => {
    tui?.kill();
    await stopAllAgents();
    if (!source || !target) return;
    await dropReplicationObjects([
      { cluster: clusterB(), ...target },
      { cluster: clusterA(), ...source },
    ]);
    await dropDatabase(clusterB(), target.name);
    await dropDatabase(clusterA(), source.name);
  });

  it('lists both nodes, follows a copy, shows per-table bars, cancels with C + y and quits with the terminal restored', async () => {
    tui = new TmuxSession(
      'tui',
      `${shellQuote(node)} ${shellQuote(runJs)} tui --db ${shellQuote(target.url)} --node ${shellQuote(targetId)}; echo "TUI-EXIT rc=$?"; sleep 600`,
    );
    let screen = await tui.waitFor(
      (s) => /NODE\s+STATE/.test(s) && /healthy/.test(nodeRow(s, sourceId)) && /healthy/.test(nodeRow(s, targetId)),
      20000,
      'both nodes read',
    );
    expect(nodeRow(screen, targetId)).toMatch(/UNINITIALIZED.*healthy/);
    expect(nodeRow(screen, sourceId)).toMatch(/UNINITIALIZED.*healthy/);
    // 100 columns leave room for the source column; 80 do not (next describe).
    expect(screen).toMatch(/NODE\s+STATE\s+SOURCE\s+LAG\s+INIT\s+HEALTH\s+LAST SEEN/);
    expect(tui.paneFlag('alternate_on')).toBe('1');

    // --node selected the target; k and j move the selection.
    expect(screen).toMatch(/^›Ziel b/m);
    tui.sendKeys('k');
    await tui.waitFor(/^›Quelle "A"/m, 10000, 'the source selected');
    tui.sendKeys('j');
    await tui.waitFor(/^›Ziel b/m, 10000, 'the target selected again');

    // A key the state does not allow says why.
    tui.sendKeys('c');
    await tui.waitFor(/is uninitialized: there is no initialization to cancel/, 10000);

    // I: source, then method; the init starts on the target's own database.
    tui.sendKeys('i');
    screen = await tui.waitFor(/from: \[1\] Quelle "A"/, 10000);
    tui.sendKeys('1');
    screen = await tui.waitFor(/method: \[1\] snapshot/, 10000);
    // only what the node's init_methods marks available
    expect(screen).toMatch(/method: \[1\] snapshot  \[2\] direct  \(Esc: no\)/);
    tui.sendKeys('1');
    screen = await tui.waitFor((s) => percentOf(nodeRow(s, targetId)) !== undefined, 30000, `${targetId} COPYING with a percentage`);
    const first = percentOf(nodeRow(screen, targetId))!;
    screen = await tui.waitFor((s) => (percentOf(nodeRow(s, targetId)) ?? -1) > first, 20000, `a percentage above ${first}%`);
    expect(percentOf(nodeRow(screen, targetId))!).toBeLessThan(100);
    tui.sendKeys('i');
    await tui.waitFor(/Ziel b is copying: an initialization starts only from failed, uninitialized/, 10000);

    tui.sendKeys('Enter');
    screen = await tui.waitFor(/"Order Lines"\s+\[[█░]+\]\s+\d+%\s+[\d.]+[kMG]? rows\/s/, 10000, 'a bar for "Order Lines"');
    expect(screen).toContain(`${targetId} ← ${sourceId} · snapshot · COPYING`);
    expect(screen).toMatch(/▶ copying/);
    expect(screen).toMatch(/Overall \[[█░]+\]\s+\d+%\s+tables \d\/2/);
    expect(screen).toMatch(/workers \d/);
    tui.sendKeys('Escape');
    await tui.waitFor((s) => !s.includes('Phases'), 10000, 'the overlay closed');

    tui.sendKeys('c');
    await tui.waitFor(/Cancel the initialization of Ziel b\? y\/n/, 10000);
    tui.sendKeys('y');
    screen = await tui.waitFor((s) => /UNINITIALIZED/.test(nodeRow(s, targetId)), 30000, `${targetId} back to UNINITIALIZED`);
    const [state] = await query(target.url, 'SELECT init_state FROM steep_repl.nodes WHERE node_id = $1', [targetId]);
    expect(state.init_state).toBe('uninitialized');

    // A change made in the database is on screen within seconds (2 s on an
    // idle machine; the bound leaves room for a loaded CI machine).
    await query(target.url, `SELECT steep_repl.transition($1, 'preparing', '{"reason": "tui latency probe"}')`, [targetId]);
    const changedAt = Date.now();
    await tui.waitFor((s) => /PREPARING/.test(nodeRow(s, targetId)), 10000, `${targetId} PREPARING`);
    expect(Date.now() - changedAt).toBeLessThan(5000);
    await query(target.url, `SELECT steep_repl.transition($1, 'uninitialized', '{"reason": "tui latency probe"}')`, [targetId]);
    await tui.waitFor((s) => /UNINITIALIZED/.test(nodeRow(s, targetId)), 10000, `${targetId} UNINITIALIZED again`);

    tui.sendKeys('q');
    screen = await tui.waitFor(/TUI-EXIT rc=\d+/, 10000);
    expect(screen).toMatch(/TUI-EXIT rc=0/);
    expect(screen).not.toMatch(/live view|NODE\s+STATE/);
    expect(tui.paneFlag('alternate_on')).toBe('0');
    expect(tui.paneFlag('cursor_flag')).toBe('1');
    expect(tui.paneFlag('keypad_flag')).toBe('0');
    expect(tui.paneFlag('mouse_any_flag')).toBe('0');
  }, 180000);
});

describe('steep-repl tui with a node going down and up', () => {
  const wideId = 'ノードノード東京';
  let runDir: string;
  let own: Cluster;
  let registry: { name: string; url: string };
  let tui: TmuxSession | undefined;

  beforeAll(async () => {
    await cleanStaleRuns(clusterRoot('test-tui'));
    runDir = claimRunDir(clusterRoot('test-tui'));
    own = await createCluster(path.join(runDir, 'c'));
    await query(own.url(), 'CREATE DATABASE app');
    registry = await createNodeDatabase(clusterA(), 'tui_reg');
    await query(registry.url, "SELECT steep_repl.register_node('here', $1, $2, $3, $4, 50, NULL, true)", [
      clusterA().host,
      clusterA().port,
      registry.name,
      clusterA().user,
    ]);
    // steep_repl is not installed on node_c's database: reachable but not readable is a state of its own.
    await query(registry.url, "SELECT steep_repl.register_node('node_c', $1, $2, 'app', $3)", [own.host, own.port, own.user]);
    // An id of wide characters, longer than the NODE column at 80 columns: cut by terminal cells.
    await query(registry.url, "SELECT steep_repl.register_node($1, '127.0.0.1', 1, 'nothing')", [wideId]);
  });

  afterAll(async () => {
    tui?.kill();
    if (registry) await dropDatabase(clusterA(), registry.name);
    if (runDir) await removeRun(runDir);
  });

  it('marks a stopped node unreachable while the screen keeps moving, and shows it again once it is back', async () => {
    tui = new TmuxSession('tui-down', `${shellQuote(node)} ${shellQuote(runJs)} tui --db ${shellQuote(registry.url)}; echo "TUI-EXIT rc=$?"; sleep 600`, 80, 24);
    let screen = await tui.waitFor((s) => /node_c.*no steep_repl/.test(s), 20000, 'node_c read');
    expect(nodeRow(screen, 'here')).toMatch(/UNINITIALIZED/);
    expect(screen).toMatch(/NODE\s+STATE\s+LAG\s+INIT\s+HEALTH\s+LAST SEEN/);
    expect(screen.split('\n').every((line) => stringWidth(line) <= 80)).toBe(true);
    const header = screen.split('\n').find((line) => /NODE\s+STATE/.test(line))!;
    const wideRow = nodeRow(screen, 'ノードノード');
    expect(wideRow).toContain('ノードノード…');
    const cellOf = (line: string, text: string) => stringWidth(line.slice(0, line.indexOf(text)));
    expect(cellOf(wideRow, 'UNINITIALIZED')).toBe(cellOf(header, 'STATE'));
    await stopCluster(own.dataDir);
    screen = await tui.waitFor((s) => /node_c.*unreachable/.test(s), 15000, 'node_c unreachable');
    const clockOf = (s: string) => /(\d\d:\d\d:\d\d)/.exec(s)?.[1];
    const clock = clockOf(screen);
    expect(clock).toBeDefined();
    screen = await tui.waitFor((s) => clockOf(s) !== undefined && clockOf(s) !== clock, 10000, 'the clock moving');
    expect(screen).toMatch(/node_c.*unreachable/);
    await startCluster(own);
    await tui.waitFor((s) => !/node_c.*unreachable/.test(s), 20000, 'node_c reachable again');
    // A wider terminal gets more columns without a restart.
    tui.resize(130, 30);
    screen = await tui.waitFor(/NODE\s+STATE\s+SOURCE\s+LAG\s+INIT\s+HEALTH\s+LAST SEEN\s+ADDRESS/, 10000, 'the ADDRESS column');
    expect(screen).toMatch(new RegExp(`node_c.*127\\.0\\.0\\.1:${own.port}/app`));
    tui.sendKeys('q');
    screen = await tui.waitFor(/TUI-EXIT rc=\d+/, 10000);
    expect(screen).toMatch(/TUI-EXIT rc=0/);
  }, 90000);
});

describe('steep-repl demo', () => {
  let demo: TmuxSession | undefined;
  let runDir: string | undefined;

  afterAll(async () => {
    demo?.kill();
    // The demo removes its run directory itself; this only cleans up after a failure.
    if (runDir && fs.existsSync(runDir)) await removeRun(runDir);
  });

  it('starts two nodes, reaches SYNCHRONIZED on its own and leaves nothing running after q', async () => {
    demo = new TmuxSession('demo', `${shellQuote(node)} ${shellQuote(runJs)} demo --scale 3; echo "DEMO-EXIT rc=$?"; sleep 600`);
    let screen = await demo.waitFor((s) => /SYNCHRONIZED/.test(nodeRow(s, 'node_b')), 120000, 'node_b SYNCHRONIZED');
    expect(nodeRow(screen, 'node_a')).toMatch(/UNINITIALIZED/);
    expect(screen).toMatch(/psql postgres:\/\/postgres@127\.0\.0\.1:\d+\/steep_demo/);

    // LAG is live, read from node_a's slot: with node_b's subscription paused, writes on node_a show up there.
    const nodeA = /(postgres:\S+)\s+\(node_a\)/.exec(screen)![1];
    const nodeB = /(postgres:\S+)\s+\(node_b\)/.exec(screen)![1];
    const [{ name }] = await query(nodeB, "SELECT steep_repl.replication_name('node_a', 'node_b') AS name");
    await query(nodeB, `ALTER SUBSCRIPTION "${name}" DISABLE`);
    await query(nodeA, "INSERT INTO shop.products (sku, title, price) SELECT 'LAG-' || g, repeat('x', 200), 1 FROM generate_series(1, 20000) g");
    screen = await demo.waitFor((s) => /SYNCHRONIZED\s+node_a\s+[\d.]+MB/.test(nodeRow(s, 'node_b')), 15000, 'a lag of megabytes on node_b');

    demo.sendKeys('q');
    screen = await demo.waitFor(/DEMO-EXIT rc=\d+/, 60000);
    expect(screen).toMatch(/DEMO-EXIT rc=0/);
    runDir = /agent logs\s+(\S+)/.exec(screen)?.[1];
    expect(runDir).toMatch(/steep-repl\/demo\/run-/);
    expect(screen).toContain(`stopped; removed ${runDir}`);
    expect(fs.existsSync(runDir!)).toBe(false);
    expect(postgresFor(runDir!)).toEqual([]);
  }, 180000);

  it('stops its servers when interrupted with Ctrl+C while still setting up', async () => {
    demo?.kill();
    // Only the run this test starts counts: a demo someone else runs on the machine is not ours to judge.
    const before = demoRuns();
    demo = new TmuxSession('demo-int', `${shellQuote(node)} ${shellQuote(runJs)} demo --scale 50; echo "DEMO-EXIT rc=$?"; sleep 600`);
    await demo.waitFor(/filling node_a/, 60000);
    const running = demoRuns()
      .filter((entry) => !before.includes(entry))
      .map((entry) => path.join(clusterRoot('demo'), entry));
    expect(running).toHaveLength(1);
    expect(running.some((dir) => postgresFor(dir).length > 0)).toBe(true);
    demo.sendKeys('C-c');
    const screen = await demo.waitFor(/DEMO-EXIT rc=\d+/, 30000);
    expect(screen).toMatch(/DEMO-EXIT rc=130/);
    for (const dir of running) expect(postgresFor(dir)).toEqual([]);
    expect(running.filter((dir) => fs.existsSync(dir))).toEqual([]);
  }, 120000);
});

describe('steep-repl tui and demo refuse bad input and change nothing', () => {
  let registry: { name: string; url: string };
  let bare: { name: string; url: string };
  const sessions: TmuxSession[] = [];

  // A command in a real terminal, to its end: what it printed and its exit code.
  async function inTerminal(name: string, args: string[]): Promise<{ screen: string; rc: number }> {
    const session = new TmuxSession(name, `${shellQuote(node)} ${shellQuote(runJs)} ${args.map(shellQuote).join(' ')}; echo "CMD-EXIT rc=$?"; sleep 600`, 100, 30);
    sessions.push(session);
    const screen = await session.waitFor(/CMD-EXIT rc=\d+/, 30000);
    expect(session.paneFlag('alternate_on')).toBe('0');
    return { screen, rc: Number(/CMD-EXIT rc=(\d+)/.exec(screen)![1]) };
  }

  beforeAll(async () => {
    registry = await createNodeDatabase(clusterA(), 'tui_bad');
    bare = await createDatabase(clusterA(), 'tui_bare');
    await query(registry.url, "SELECT steep_repl.register_node('only one', '127.0.0.1', 5432, 'x')");
  });

  afterAll(async () => {
    sessions.forEach((s) => s.kill());
    if (registry) await dropDatabase(clusterA(), registry.name);
    if (bare) await dropDatabase(clusterA(), bare.name);
  });

  it('tui without a terminal exits 2 and says why', async () => {
    const result = await runCli(['tui', '--db', registry.url]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/needs an interactive terminal/);
    expect(result.stdout).toBe('');
  });

  it('tui on a database without steep_repl exits 1 with the install hint, leaving the database as it was', async () => {
    const { screen, rc } = await inTerminal('bare', ['tui', '--db', bare.url]);
    expect(rc).toBe(1);
    expect(screen).toMatch(/steep_repl is not installed in 127\.0\.0\.1:\d+\/tui_bare/);
    expect(screen).toMatch(/hint: run: steep-repl install/);
    expect(await query(bare.url, "SELECT count(*)::int AS n FROM pg_namespace WHERE nspname IN ('steep_repl', 'graphile_worker')")).toEqual([{ n: 0 }]);
  });

  it('tui on a server that does not answer exits 6', async () => {
    const { screen, rc } = await inTerminal('down', ['tui', '--db', 'postgres://postgres@127.0.0.1:1/nothing']);
    expect(rc).toBe(6);
    expect(screen).toMatch(/cannot connect to 127\.0\.0\.1:1\/nothing/);
  });

  it('tui --node with an unregistered node exits 2 and lists the registered ones', async () => {
    const { screen, rc } = await inTerminal('unknown', ['tui', '--db', registry.url, '--node', 'no such "node"']);
    expect(rc).toBe(2);
    expect(screen).toMatch(/unknown node "no such \\"node\\""/);
    expect(screen).toMatch(/registered nodes: only one/);
    expect(await query(registry.url, 'SELECT node_id, init_state FROM steep_repl.nodes')).toEqual([{ node_id: 'only one', init_state: 'uninitialized' }]);
  });

  it('demo with an out-of-range scale or contradicting flags exits 2 and starts no server', async () => {
    const before = demoRuns();
    const zero = await runCli(['demo', '--scale', '0']);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/scale/);
    const contradiction = await runCli(['demo', '--exit-when-synchronized']);
    expect(contradiction.code).toBe(2);
    expect(contradiction.stderr).toMatch(/--exit-when-synchronized goes with --no-tui/);
    expect(demoRuns().filter((run) => !before.includes(run))).toEqual([]);
  });

  it('demo --no-tui --exit-when-synchronized follows the init in plain lines and removes everything', async () => {
    const result = await runCli(['demo', '--scale', '2', '--no-tui', '--exit-when-synchronized']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/100\.0%\s+done\s+5\/5 tables/);
    expect(result.stdout).toMatch(/^node_b: synchronized$/m);
    const runDir = /agent logs\s+(\S+)/.exec(result.stdout)![1];
    expect(result.stdout).toContain(`stopped; removed ${runDir}`);
    expect(fs.existsSync(runDir)).toBe(false);
  }, 120000);
});
