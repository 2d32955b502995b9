// The live view and two-phase snapshots, in a real terminal: a source
// generating a snapshot shows it on its row; the I key offers two-phase
// only with a ready snapshot on the source (and says why not otherwise);
// the overlay of a two-phase init names its phases and the snapshot; then a
// real generate (its agent throttled) followed on a terminal and watched in
// the live view, Ctrl+C leaving it running.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../lib/paths';
import { clusterA, clusterB, query } from './support/clusters';
import { createInitPair, InitPair, initStatus } from './support/init-pair';
import { AgentProcess, runCli, stopAllAgents } from './support/processes';
import { TmuxSession } from './support/tmux';
import { waitUntil } from './support/wait';

jest.setTimeout(120000);

const runJs = path.join(packageRoot, 'bin', 'run.js');
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describe('tui: snapshots and two-phase inits', () => {
  let pair: InitPair;
  let tui: TmuxSession | undefined;
  let follow: TmuxSession | undefined;
  let root: string | undefined;

  beforeAll(async () => {
    pair = await createInitPair({ tag: 'snap_tui', sourceCluster: clusterA(), targetCluster: clusterB(), sourceId: 'Quelle "T"', targetId: 'ziel u', rows: 200 });
  });
  afterAll(async () => {
    tui?.kill();
    follow?.kill();
    await stopAllAgents();
    await pair?.drop();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  const row = (screen: string, id: string) => screen.split('\n').find((l) => l.slice(1).startsWith(id)) ?? '';

  it('shows the generating snapshot, offers two-phase with a ready one, and names the phases of a two-phase init', async () => {
    // queued with no agent on the source: generating, nothing written yet
    const [{ r: started }] = await query(pair.source.url, "SELECT steep_repl.generate_snapshot('/tmp/steep-snap-tui-never-written') AS r");
    const id: string = started.snapshot_id;
    tui = new TmuxSession(
      'snap-tui',
      `${shellQuote(process.execPath)} ${shellQuote(runJs)} tui --db ${shellQuote(pair.target.url)} --node ${shellQuote(pair.target.id)}; echo "TUI-EXIT rc=$?"; sleep 600`,
      120,
      34,
    );
    let screen = await tui.waitFor((s) => /generating 0%/.test(row(s, pair.source.id)), 20000, 'the source row generating');
    tui.sendKeys('k');
    screen = await tui.waitFor(new RegExp(`generating snapshot ${id} 0% · parts 0/0 · 0B written`), 10000, 'the generating line under the table');

    // I on the target: no ready snapshot on the source, so no two-phase, and why
    tui.sendKeys('j');
    await tui.waitFor(/^›ziel u/m, 10000, 'the target selected');
    tui.sendKeys('i');
    await tui.waitFor(/from: \[1\] Quelle "T"/, 10000);
    tui.sendKeys('1');
    screen = await tui.waitFor(/method: \[1\] snapshot  \[2\] direct  \(Esc: no\)  · two-phase: no ready snapshot on Quelle "T"/, 10000, 'two-phase left out, with why');
    tui.sendKeys('Escape');

    // Once the source holds a ready snapshot, two-phase is offered with it and starts by its id.
    await query(pair.source.url, "UPDATE steep_repl.snapshots SET state = 'ready', consistent_lsn = pg_current_wal_lsn(), finished_at = now() WHERE snapshot_id = $1", [id]);
    await tui.waitFor((s) => !/generating/.test(row(s, pair.source.id)), 10000, 'the source no longer generating');
    tui.sendKeys('i');
    await tui.waitFor(/from: \[1\] Quelle "T"/, 10000);
    tui.sendKeys('1');
    await tui.waitFor(new RegExp(`\\[3\\] two-phase ${id}  \\(Esc: no\\)`), 10000, 'two-phase offered with the snapshot');
    tui.sendKeys('3');
    await tui.waitFor(new RegExp(`initialization of ziel u from Quelle "T" started \\(two-phase, snapshot ${id}\\)`), 10000);
    const status = await initStatus(pair.target);
    expect(status.progress).toMatchObject({ method: 'two-phase', options: { snapshot: id } });

    // The overlay names the two-phase phases and the snapshot.
    tui.sendKeys('Enter');
    screen = await tui.waitFor(/▶ verify · schema · loading · catching up · finalizing/, 10000, 'the two-phase phases');
    expect(screen).toContain(`ziel u ← Quelle "T" · two-phase · PREPARING`);
    expect(screen).toMatch(new RegExp(`Snapshot ${id}`));
    await query(pair.target.url, "SELECT steep_repl.init_phase($1, 'copying')", [pair.target.id]);
    await tui.waitFor(/✓ verify ✓ schema ▶ loading · catching up · finalizing/, 10000, 'loading');
    // node progress says the same
    const progress = await runCli(['node', 'progress', pair.target.id, '--db', pair.target.url]);
    expect(progress.stdout).toMatch(new RegExp(`^\\[-{24}\\]\\s+0\\.0%  loading snapshot ${id}  0/0 tables`, 'm'));

    // cancelled before any agent took it: uninitialized at once
    await query(pair.target.url, 'SELECT steep_repl.cancel_init($1)', [pair.target.id]);
    tui.sendKeys('Escape');
    await tui.waitFor((s) => !s.includes('Phases') && !s.includes('no initialization recorded'), 10000, 'the overlay closed');
    tui.sendKeys('q');
    expect(await tui.waitFor(/TUI-EXIT rc=\d+/, 10000)).toMatch(/TUI-EXIT rc=0/);
  });

  it('follows a real generate on a terminal (a line per worker, redrawn in place) and in the live view; Ctrl+C leaves it running', async () => {
    // bytes per second per worker: the docs table (~3 MB) takes seconds
    await AgentProcess.start(pair.source.url, [], { STEEP_REPL_COPY_MAX_RATE: '400000' });
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'steep-snap-tui-'));
    const dir = path.join(root, 'live');
    tui?.kill();
    tui = new TmuxSession(
      'snap-tui-live',
      `${shellQuote(process.execPath)} ${shellQuote(runJs)} tui --db ${shellQuote(pair.target.url)} --node ${shellQuote(pair.source.id)}; echo "TUI-EXIT rc=$?"; sleep 600`,
      120,
      34,
    );
    await tui.waitFor(/NODE\s+STATE/, 20000, 'the nodes view');
    follow = new TmuxSession(
      'snap-follow',
      `${shellQuote(process.execPath)} ${shellQuote(runJs)} snapshot generate ${shellQuote(pair.source.id)} --output ${shellQuote(dir)} ` +
        `--parallel 2 --compression gzip --db ${shellQuote(pair.target.url)}; echo "GEN-EXIT rc=$?"; sleep 600`,
      130,
      12,
    );
    const workerLine = /^ {2}worker [12] {2}\S.* part \d+\/\d+ {2}\s*(\d+\.\d%|-) {2}\S+B$/;
    const overallLine = /\[[#-]{24}\]\s+\d+\.\d%\s+generating\s+\d+\/\d+ parts\s+\S+ written\s+\S+ stored \((\d+\.\dx|-)\)\s+\S+B\/s\s+\d workers/;
    let screen = await follow.waitFor((s) => s.split('\n').some((l) => workerLine.test(l)) && overallLine.test(s) && !/ 0B written/.test(s), 30000, 'a line per worker');
    expect(screen.split('\n').filter((l) => /\d+\/\d+ parts/.test(l))).toHaveLength(1);

    // the live view: the source's row and its overlay
    screen = await tui.waitFor((s) => /generating \d+%/.test(row(s, pair.source.id)), 20000, 'the source generating');
    const [{ snapshot_id: id }] = await query(pair.source.url, "SELECT snapshot_id FROM steep_repl.snapshots WHERE output_dir = $1", [dir]);
    expect(screen).toMatch(new RegExp(`generating snapshot ${id} \\d+% · parts \\d+/\\d+ · \\S+ written`));
    tui.sendKeys('Enter');
    screen = await tui.waitFor(new RegExp(`Snapshot ${id} \\[[█░]+\\]\\s+\\d+%\\s+parts \\d+/\\d+`), 10000, 'the snapshot bar in the overlay');
    expect(screen).toMatch(/written · \S+ stored · .*workers \d\/2 · ETA/);

    // Ctrl+C stops following only
    follow.sendKeys('C-c');
    screen = await follow.waitFor(/GEN-EXIT rc=\d+/, 10000);
    expect(screen).toMatch(new RegExp(`stopped following; snapshot ${id} goes on being written by Quelle "T"'s agent`));
    expect(screen).toContain(`steep-repl snapshot delete ${id} --node 'Quelle "T"'`);
    expect(screen).toMatch(/GEN-EXIT rc=130/);
    await waitUntil('the snapshot ready', async () =>
      (await query(pair.source.url, 'SELECT state FROM steep_repl.snapshots WHERE snapshot_id = $1', [id]))[0].state === 'ready', 60000, 500);
    await tui.waitFor((s) => !s.includes(`Snapshot ${id}`), 10000, 'the bar gone once ready');
    tui.sendKeys('Escape');
    await tui.waitFor((s) => !s.includes('┌'), 10000, 'the overlay closed');
    tui.sendKeys('q');
    expect(await tui.waitFor(/TUI-EXIT rc=\d+/, 10000)).toMatch(/TUI-EXIT rc=0/);
  });
});
