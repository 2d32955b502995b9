// The same figure everywhere: while a copy runs, `node progress --json` and
// the live view's data (ClusterWatch's node view, which the detail overlay
// and the nodes view draw) show the same rows/s, bytes/s, ETA and lag for
// the same report of the agent, and print them as the same text. Once the
// node streams, the live view's lag is steep_repl.slot_lag's figure.
import { bytesPerSecond, eta, rowsPerSecond } from '../lib/format';
import { InitStatus } from '../lib/sql/getInitStatus';
import { getSlotLag } from '../lib/sql/getSlotLag';
import { progressLine } from '../cli/init-follow';
import { ClusterWatch, NodeView } from '../tui/cluster-watch';
import { renderInitOverlay } from '../tui/init-overlay';
import { nodeLag } from '../tui/nodes-view';
import { clusterA, clusterB, query, withClient } from './support/clusters';
import { createInitPair, InitPair, initStatus, waitForCopyInProgress } from './support/init-pair';
import { AgentProcess, runCli, stopAllAgents } from './support/processes';
import { waitUntil } from './support/wait';

jest.setTimeout(180000);

// The overlay as text: every piece it puts on the screen, in order.
function overlayText(view: NodeView): string {
  const pieces: string[] = [];
  renderInitOverlay({ put: (_x, _y, text) => void pieces.push(text) }, { x: 0, y: 0, width: 120, height: 40 }, view);
  return pieces.join('\n');
}

describe('node progress and the live view', () => {
  let pair: InitPair;
  let watch: ClusterWatch | undefined;

  beforeAll(async () => {
    // public.slow takes 6000 rows × 3 ms on the target: a copy that runs for seconds.
    pair = await createInitPair({
      tag: 'progress_parity',
      sourceCluster: clusterA(),
      targetCluster: clusterB(),
      sourceId: 'Parity "A"',
      targetId: 'parity b',
      rows: 2000,
      slowRows: 6000,
      slowMsPerRow: 3,
    });
    const agent = new AgentProcess(pair.target.url);
    await agent.waitForEvent('agent.started');
  });
  afterAll(async () => {
    await watch?.stop();
    await stopAllAgents();
    await pair?.drop();
  });

  // The view read after `read` ended, once it has read the node again.
  async function viewAfter(at: number): Promise<NodeView> {
    watch!.watchDetail(pair.target.id);
    return waitUntil('the live view to read the node again', () => {
      const view = watch!.node(pair.target.id);
      return view?.readAt && view.readAt.getTime() >= at && view.progress ? view : undefined;
    }, 10000, 20);
  }

  it('show the same rows/s, bytes/s, ETA and lag for the same report while a table copies', async () => {
    const started = await runCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--no-wait', '--db', pair.target.url]);
    expect(started.code).toBe(0);
    await waitForCopyInProgress(pair, { otherTablesDone: true });
    // the agent's rate needs two reports of moving rows
    await waitUntil('a copy rate and an ETA', async () => {
      const p = (await initStatus(pair.target)).progress;
      return p?.rows_per_second > 0 && p?.eta_seconds !== null;
    }, 20000);
    watch = new ClusterWatch({ db: pair.target.url, applicationName: 'steep-repl test parity' });
    await watch.start();

    // Back to back, `node progress` first; a pair counts when both saw the
    // same report (updated_at), i.e. the agent did not report in between.
    const samples: Array<{ cli: InitStatus; view: NodeView }> = [];
    for (let attempt = 0; attempt < 20 && samples.length < 3; attempt++) {
      const result = await runCli(['node', 'progress', pair.target.id, '--json', '--db', pair.target.url]);
      expect(result.code).toBe(0);
      const cli: InitStatus = JSON.parse(result.stdout);
      if (cli.state !== 'copying') break;
      const view = await viewAfter(Date.now());
      if (view.progress?.updated_at === cli.progress!.updated_at) samples.push({ cli, view });
    }
    expect(samples.length).toBeGreaterThanOrEqual(2);
    expect(samples.some(({ cli }) => Number(cli.progress!.rows_per_second) > 0 && cli.progress!.eta_seconds !== null)).toBe(true);

    for (const { cli, view } of samples) {
      const p = cli.progress!;
      const figures = (from: typeof p) => ({
        rows_per_second: from.rows_per_second,
        bytes_per_second: from.bytes_per_second,
        eta_seconds: from.eta_seconds,
        lag_bytes: from.lag_bytes,
        overall_percent: from.overall_percent,
        rows_copied: from.rows_copied,
        bytes_copied: from.bytes_copied,
      });
      expect(figures(view.progress!)).toEqual(figures(p));
      // the nodes view's LAG: while copying, the lag the init reported (none yet)
      expect(nodeLag(view) ?? null).toEqual(p.lag_bytes);
      expect(view.state!.eta_seconds).toEqual(p.eta_seconds);
      expect(Number(view.state!.rows_per_second)).toEqual(p.rows_per_second);

      // Finished tables carry their stored rate, the copying one a rate (the average since it started) in both.
      const done = (tables: InitStatus['tables']) =>
        tables.filter((t) => t.state === 'done').map((t) => [t.label, t.rows_per_second, t.rows_copied, t.completed_at]);
      expect(done(view.tables!)).toEqual(done(cli.tables));
      const copying = cli.tables.find((t) => t.state === 'copying')!;
      expect(copying.rows_per_second).toBeGreaterThan(0);
      expect(view.tables!.find((t) => t.label === copying.label)!.rows_per_second).toBeGreaterThan(0);

      // The same numbers as the same text: node progress's line and the overlay.
      const line = progressLine(cli);
      const overlay = overlayText(view);
      for (const text of [rowsPerSecond(p.rows_per_second), bytesPerSecond(p.bytes_per_second), eta(p.eta_seconds)]) {
        expect({ text, inLine: line.includes(text), inOverlay: overlay.includes(text) }).toEqual({ text, inLine: true, inOverlay: true });
      }
    }
  });

  it("shows steep_repl.slot_lag's figure as the lag once the node streams", async () => {
    await waitUntil('synchronized', async () => (await initStatus(pair.target)).state === 'synchronized', 120000);
    const status = await initStatus(pair.target);
    const slot: string = status.method_state.slot_name;
    expect(slot).toBe(pair.replicationName);
    // With the subscription paused the slot stays where it is while the source writes on.
    await query(pair.target.url, `ALTER SUBSCRIPTION "${pair.replicationName}" DISABLE`);
    await query(pair.source.url, "INSERT INTO public.accounts SELECT g, 1, repeat('x', 200) FROM generate_series(1000001, 1010000) g");
    const lagNow = async () => (await withClient(pair.source.url, (client) => getSlotLag(client, slot))).lag_bytes!;
    // The source's WAL moves with every database of its server, so the view's
    // read falls between a read before it and one after it.
    for (let i = 0; i < 3; i++) {
      const before = await lagNow();
      const view = await waitUntil('the live view to read a lag', async () => {
        const v = await viewAfter(Date.now());
        return v.slotLag !== undefined ? v : undefined;
      });
      const after = await lagNow();
      expect(before).toBeGreaterThan(1e6);
      expect(nodeLag(view)).toBeGreaterThanOrEqual(before);
      expect(nodeLag(view)).toBeLessThanOrEqual(after);
    }
    await query(pair.target.url, `ALTER SUBSCRIPTION "${pair.replicationName}" ENABLE`);
  });
});
