// node verify and node reinit as a DBA runs them: real CLI processes against
// a real PostgreSQL 18 pair synchronized by a snapshot init, with agents on
// both. Equal first; then a divergence made by hand on the target (not
// replicated) found with its keys, the node diverged in node status and
// node list; bad arguments refused with exit 2 and nothing changed; the
// diverged table re-copied with node reinit --tables, synchronized.
import { clusterA, clusterB } from './support/clusters';
import { contentHashes } from './support/content-hash';
import { createSyncedPair, divergeItemsSql, nodeState, pairTables, SyncedPair } from './support/diverged-pair';
import { query } from './support/clusters';
import { runCli, startCli } from './support/processes';
import { waitUntil } from './support/wait';

jest.setTimeout(90000);

const sourceId = 'Quelle "V"';
const targetId = 'Ziel v';

describe('node verify and node reinit', () => {
  let pair: SyncedPair;
  const cli = (...args: string[]) => runCli([...args, '--db', pair.target.url]);

  beforeAll(async () => {
    pair = await createSyncedPair({ tag: 'verify_cli', sourceCluster: clusterA(), targetCluster: clusterB(), sourceId, targetId });
  });
  afterAll(async () => {
    await pair?.drop();
  });

  it('an equal pair verifies equal: exit 0, every table equal, in text and --json', async () => {
    const json = await cli('node', 'verify', targetId, '--json');
    expect(json.stderr).not.toMatch(/error/);
    expect(json.code).toBe(0);
    const status = JSON.parse(json.stdout);
    expect(status).toMatchObject({ node_id: targetId, peer_node_id: sourceId, reason: 'verify', state: 'equal', tables_total: 3, tables_done: 3 });
    expect(status.tables.map((t: { label: string }) => t.label).sort()).toEqual([...pairTables].sort());
    for (const t of status.tables) {
      expect(t).toMatchObject({ status: 'equal', rows_missing: 0, rows_extra: 0, rows_different: 0, differences: [] });
    }

    // a quoted name in --tables, as psql takes it; text on stdout, the bar on stderr
    const text = await cli('node', 'verify', targetId, '--tables', '"Sales ünit"."Odd ""T"""');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^verify \\d+ of ${targetId} against Quelle "V": equal \\(1 table, `));
    expect(text.stdout).toMatch(/"Sales ünit"\."Odd ""T"""\s+equal\s+0\s+0\s+0/);
    expect(text.stderr).toMatch(/verifying Ziel v against Quelle "V": 1 table \(verify \d+\)/);
  });

  it('a hand-made divergence: exit 1 with each key, the node diverged in node status and node list', async () => {
    await query(pair.target.url, divergeItemsSql);
    const result = await cli('node', 'verify', targetId);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/: 1 of 3 tables differs/);
    expect(result.stdout).toMatch(/public\.items\s+differs\s+1\s+1\s+1/);
    expect(result.stdout).toMatch(/^ {2}different \(id=7\)$/m);
    expect(result.stdout).toMatch(/^ {2}extra {5}\(id=100001\)$/m);
    expect(result.stdout).toMatch(/^ {2}missing {3}\(id=5\)$/m);
    expect(result.stdout).toMatch(/Ziel v is diverged; re-copy what differs: steep-repl node reinit 'Ziel v' --tables public\.items/);

    const status = await cli('node', 'status', targetId, '--json');
    expect(status.code).toBe(0);
    const node = JSON.parse(status.stdout);
    expect(node).toMatchObject({ init_state: 'diverged', diverged_tables: 1, can_reinit: true, verify_running: false });
    expect(node.divergence).toEqual([
      expect.objectContaining({ label: 'public.items', rows_missing: 1, rows_extra: 1, rows_different: 1, peer_node_id: sourceId }),
    ]);
    expect(node.last_verify).toMatchObject({ state: 'differs', tables_differing: 1, tables_total: 3 });

    const text = await cli('node', 'status', targetId);
    expect(text.stdout).toMatch(/^init state\s+diverged$/m);
    expect(text.stdout).toMatch(/^diverged\s+1 table differs; re-copy: steep-repl node reinit 'Ziel v' --tables public\.items$/m);
    expect(text.stdout).toMatch(/^ {2}table\s+public\.items: missing 1, extra 1, different 1 \(verify \d+ against Quelle "V", \d+s ago\)$/m);
    expect(text.stdout).toMatch(/^last verify\s+\d+ differs against Quelle "V" \d+s ago: 1 of 3 tables differ$/m);

    const list = await cli('node', 'list');
    expect(list.stdout).toMatch(/Ziel v \*.*diverged \(1 table\)/);
  });

  it('bad arguments exit 2 and change nothing', async () => {
    const before = await nodeState(pair.target);
    const cases: Array<[string[], RegExp]> = [
      [['node', 'verify', targetId, '--tables', 'public.items', '--schema', 'public'], /--tables and --schema cannot be used together/],
      [['node', 'verify', targetId, '--tables', 'public.items,,public.notes'], /an empty table name/],
      [['node', 'verify', targetId, '--tables', '"public.items'], /a quoted name is not closed/],
      [['node', 'verify', targetId, '--key-limit', '0'], /--key-limit/],
      [['node', 'verify', targetId, '--tables', 'public.nope'], /nope/],
      [['node', 'verify', targetId, '--schema', 'nowhere'], /nowhere/],
      [['node', 'verify', targetId, '--from', targetId], /itself/],
      [['node', 'reinit', targetId], /say what to re-copy: --tables a,b, --schema s or --full/],
      [['node', 'reinit', targetId, '--tables', 'public.items', '--full', '--yes'], /--tables and --full cannot be used together/],
      [['node', 'reinit', targetId, '--tables', 'public.nope', '--yes'], /nope/],
      // no terminal and no --yes: refused before anything is asked or changed
      [['node', 'reinit', targetId, '--tables', 'public.items'], /node reinit empties table public\.items on Ziel v and copies them again: confirm it on a terminal, or pass --yes/],
    ];
    for (const [args, message] of cases) {
      const result = await cli(...args);
      expect({ args, code: result.code, stdout: result.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(result.stderr).toMatch(message);
    }
    expect(await nodeState(pair.target)).toEqual(before);
  });

  it('node reinit --tables re-copies the diverged table: exit 0, synchronized, the divergence gone, the rows equal', async () => {
    const result = await cli('node', 'reinit', targetId, '--tables', 'public.items', '--yes');
    expect(result.stderr).not.toMatch(/error/);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Ziel v is synchronized: table public\.items re-copied from Quelle "V" and verified equal$/m);
    const node = JSON.parse((await cli('node', 'status', targetId, '--json')).stdout);
    expect(node).toMatchObject({ init_state: 'synchronized', diverged_tables: 0, divergence: [] });
    expect(await contentHashes(pair.target.url, pairTables)).toEqual(await contentHashes(pair.source.url, pairTables));
  });

  it("Ctrl+C cancels the verify on the node: exit 4, the node's state unchanged", async () => {
    // without the target's agent the verify waits in the queue: the cancel is certain to come first
    await pair.agents[1].stop('SIGKILL');
    const before = await nodeState(pair.target);
    const run = startCli(['node', 'verify', targetId, '--db', pair.target.url]);
    await waitUntil('the verify started', async () => /verifying Ziel v against Quelle "V": 3 tables \(verify \d+\)/.test(run.stderr), 20000, 100);
    run.child.kill('SIGINT');
    const result = await run.result;
    expect(result.stderr).toMatch(/cancelling the verify of Ziel v\.\.\. \(Ctrl\+C again to stop waiting; the agent finishes the cancel\)/);
    expect(result.code).toBe(4);
    expect(result.stdout).toMatch(/^verify \d+ of Ziel v against Quelle "V": cancelled; the node's state is unchanged$/m);
    const [last] = await query(pair.target.url, 'SELECT state FROM steep_repl.verify_runs ORDER BY verify_id DESC LIMIT 1');
    expect(last.state).toBe('cancelled');
    const after = (await nodeState(pair.target)) as { verify_runs: number };
    expect({ ...after, verify_runs: after.verify_runs - 1 }).toEqual(before);
  });
});
