// The live view of a diverged node in a real terminal (tmux), against a
// real PostgreSQL 18 pair with agents on both: the row says diverged and
// how many tables, the detail overlay lists them; R asks in a box, Esc
// aborts with nothing changed, R then y starts the reinit of the diverged
// table and the view follows it to synchronized. And the overlay's bar of
// a running verify, drawn from a node_overview row the test chose.
import * as path from 'node:path';
import { packageRoot } from '../lib/paths';
import type { NodeOverview } from '../lib/sql/listNodes';
import type { NodeView } from '../tui/cluster-watch';
import { renderInitOverlay } from '../tui/init-overlay';
import { clusterA, clusterB, query } from './support/clusters';
import { createSyncedPair, divergeItemsSql, nodeState, SyncedPair } from './support/diverged-pair';
import { runCli } from './support/processes';
import { TmuxSession } from './support/tmux';

jest.setTimeout(90000);

const runJs = path.join(packageRoot, 'bin', 'run.js');
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

const sourceId = 'Quelle "R"';
const targetId = 'Ziel r';

function nodeRow(screen: string, id: string): string {
  return screen.split('\n').find((line) => line.slice(1).startsWith(id) && /SYNCHRONIZED|DIVERGED|REINITIALIZING|FAILED/.test(line)) ?? '';
}

// The overlay as the screen would show it (one cell per character here).
function overlayText(view: NodeView, width = 100): string {
  const rows: string[][] = [];
  renderInitOverlay(
    {
      put: (x, y, text) => {
        const row = (rows[y] ??= []);
        Array.from(text).forEach((ch, i) => (row[x + i] = ch));
      },
    },
    { x: 0, y: 0, width, height: 30 },
    view,
  );
  return rows.map((row) => Array.from(row, (ch) => ch ?? ' ').join('').trimEnd()).join('\n');
}

describe('the live view of verify and reinit', () => {
  let pair: SyncedPair;
  let tui: TmuxSession | undefined;

  beforeAll(async () => {
    pair = await createSyncedPair({ tag: 'reinit_tui', sourceCluster: clusterA(), targetCluster: clusterB(), sourceId, targetId, rows: 2000 });
    await query(pair.target.url, divergeItemsSql);
    const verify = await runCli(['node', 'verify', targetId, '--db', pair.target.url]);
    if (verify.code !== 1) throw new Error(`node verify should have found the divergence (exit ${verify.code}): ${verify.stdout}${verify.stderr}`);
  });
  afterAll(async () => {
    tui?.kill();
    await pair?.drop();
  });

  it('shows the diverged node, asks before R, aborts on Esc and follows a reinit to synchronized', async () => {
    tui = new TmuxSession(
      'reinit-tui',
      `${shellQuote(process.execPath)} ${shellQuote(runJs)} tui --db ${shellQuote(pair.target.url)} --node ${shellQuote(targetId)}; echo "TUI-EXIT rc=$?"; sleep 600`,
    );
    // the registry's row may be drawn before the node's own read ('connecting'): wait for both
    const diverged = /DIVERGED\s+Quelle "R"\s+\S+\s+1 table differs\s+healthy/;
    let screen = await tui.waitFor((s) => diverged.test(nodeRow(s, targetId)), 20000, `${targetId} DIVERGED and healthy`);
    expect(screen).toMatch(/Ziel r: diverged \(1 table\) · source Quelle "R"/);
    expect(screen).toMatch(/differ: public\.items · R re-copies them/);
    expect(screen).toMatch(/R reinit/);

    // the detail overlay: the divergence, table by table
    tui.sendKeys('Enter');
    screen = await tui.waitFor(/Diverged 1 table differs/, 10000, 'the divergence in the overlay');
    expect(screen).toMatch(/Diverged 1 table differs \(verify \d+ against Quelle "R", \d+s ago\) · R re-copies them/);
    expect(screen).toMatch(/✗ public\.items\s+missing 1 · extra 1 · different 1/);
    expect(screen).toMatch(/Esc close · C cancel · I init · R reinit/);
    tui.sendKeys('Escape');
    await tui.waitFor((s) => !/Diverged 1 table/.test(s), 10000, 'the overlay closed');

    // R asks; Esc aborts and nothing changes
    const before = await nodeState(pair.target);
    tui.sendKeys('R');
    screen = await tui.waitFor(/Reinit Ziel r\?/, 10000, 'the reinit question');
    expect(screen).toMatch(/▶ \[1\] the 1 diverged table: public\.items/);
    expect(screen).toMatch(/\[2\] the whole node: every table, with its method snapshot/);
    expect(screen).toMatch(/y\/Enter: re-copy · 1-2 or ↑↓: choose · Esc: abort/);
    tui.sendKeys('Escape');
    screen = await tui.waitFor(/nothing done/, 10000);
    expect(screen).not.toMatch(/Reinit Ziel r\?/);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await nodeState(pair.target)).toEqual(before);

    // R then y: the diverged table re-copied; the view follows to synchronized
    tui.sendKeys('R');
    await tui.waitFor(/Reinit Ziel r\?/, 10000, 'the reinit question again');
    tui.sendKeys('y');
    screen = await tui.waitFor(/reinit of Ziel r started \(public\.items\)/, 10000, 'the reinit started');
    screen = await tui.waitFor((s) => /SYNCHRONIZED/.test(nodeRow(s, targetId)), 60000, `${targetId} SYNCHRONIZED`);
    expect(nodeRow(screen, targetId)).toMatch(/SYNCHRONIZED\s+Quelle "R"\s+\S+\s+done\s+healthy/);
    const [node] = await query(pair.target.url, 'SELECT init_state, diverged_tables, reinit FROM steep_repl.node_overview WHERE node_id = $1', [targetId]);
    expect(node).toMatchObject({ init_state: 'synchronized', diverged_tables: 0, reinit: expect.objectContaining({ scope: 'tables', outcome: 'equal' }) });
    // the audit trail: the reinit of that table only, through reinitializing
    const events = await query(pair.target.url, "SELECT event FROM steep_repl.audit_log WHERE event LIKE 'reinit.%' ORDER BY audit_id");
    expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(['reinit.started', 'reinit.completed']));

    tui.sendKeys('q');
    screen = await tui.waitFor(/TUI-EXIT rc=\d+/, 10000);
    expect(screen).toMatch(/TUI-EXIT rc=0/);
  });

  it("the detail overlay draws a running verify's bar with its phase, tables and current table", () => {
    const state = {
      node_id: targetId,
      init_state: 'synchronized',
      init_source_node: sourceId,
      diverged_tables: 0,
      divergence: [],
      verify_running: true,
      last_verify: {
        verify_id: 13, peer_node_id: sourceId, reason: 'verify', state: 'running', phase: 'hashing', percent: 42.5,
        tables_total: 5, tables_done: 2, tables_differing: 0, current_table: 'public."Order Lines"', rows_compared: 12000,
        error: null, requested_at: new Date().toISOString(), started_at: new Date().toISOString(), finished_at: null,
      },
    } as unknown as NodeOverview;
    const text = overlayText({ id: targetId, registry: state, reachable: true, state, progress: null });
    expect(text).toMatch(/Verify 13 \[█+░+\]\s+42%\s+hashing 2\/5 tables\s+public\."Order Lines"/);
  });
});
