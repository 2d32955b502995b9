// snapshot generate|list|apply|delete as a DBA runs them: real CLI
// processes, a real agent on each node, small data. The bar is read as a
// pipe shows it (one set of lines per phase or every 5 s); every refusal
// proves nothing changed on either node.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { clusterA, clusterB, query } from './support/clusters';
import { contentHashes, createInitPair, InitPair, initStatus, sourceWrites } from './support/init-pair';
import { AgentProcess, CliResult, runCli, stopAllAgents } from './support/processes';
import { registryState } from './support/registry-state';
import { startWriter, Writer } from './support/writer';
import { waitUntil } from './support/wait';

jest.setTimeout(180000);

describe('snapshot generate, list, apply and delete through the CLI', () => {
  let pair: InitPair;
  let root: string;
  let writer: Writer | undefined;
  let snapshotId: string;
  let snapshotDir: string;

  beforeAll(async () => {
    pair = await createInitPair({ tag: 'snap_cli', sourceCluster: clusterA(), targetCluster: clusterB(), sourceId: 'Quelle "S"', targetId: 'ziel t', rows: 4000 });
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'steep-snap-cli-'));
    await Promise.all([AgentProcess.start(pair.source.url), AgentProcess.start(pair.target.url)]);
  });
  afterAll(async () => {
    await writer?.stop().catch(() => undefined);
    await stopAllAgents();
    await pair?.drop();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  const source = () => pair.source.id;
  const target = () => pair.target.id;
  // Everything a refused command must leave as it was, on both nodes.
  async function stateOf(): Promise<unknown> {
    const counts = (url: string) =>
      query(
        url,
        `SELECT (SELECT count(*)::int FROM graphile_worker.jobs WHERE task_identifier NOT IN ('snapshot_watch', 'probe_node')) AS jobs,
                (SELECT coalesce(json_agg(s.snapshot_id || ':' || s.state ORDER BY s.snapshot_id), '[]') FROM steep_repl.snapshots s) AS snapshots,
                (SELECT count(*)::int FROM steep_repl.init_progress) AS progress_rows,
                (SELECT count(*)::int FROM pg_replication_slots WHERE database = current_database()) AS slots`,
      );
    // the agents' heartbeats move last_seen meanwhile
    const registry = async (url: string) => {
      const { nodes, audit_rows } = await registryState(url);
      return { audit_rows, nodes: (nodes as Array<Record<string, unknown>>).map(({ last_seen: _seen, ...row }) => row) };
    };
    return {
      source: { registry: await registry(pair.source.url), ...(await counts(pair.source.url))[0] },
      target: { registry: await registry(pair.target.url), ...(await counts(pair.target.url))[0] },
      files: fs.readdirSync(root).sort(),
    };
  }

  const refusals: Array<[string, () => string[], RegExp]> = [
    ['generate: an unknown compression', () => ['snapshot', 'generate', source(), '--output', path.join(root, 'x'), '--compression', 'brotli'], /--compression/],
    ['generate: --expires 7x', () => ['snapshot', 'generate', source(), '--output', path.join(root, 'x'), '--expires', '7x'], /--expires "7x": unknown unit "x"/],
    ['generate: --expires soon', () => ['snapshot', 'generate', source(), '--output', path.join(root, 'x'), '--expires', 'soon'], /--expires "soon" is not a duration/],
    ['generate: --expires 30s (below a minute)', () => ['snapshot', 'generate', source(), '--output', path.join(root, 'x'), '--expires', '30s'], /expires/],
    ['generate: --parallel 0', () => ['snapshot', 'generate', source(), '--output', path.join(root, 'x'), '--parallel', '0'], /parallel/],
    ['generate: an unknown node', () => ['snapshot', 'generate', 'nobody', '--output', path.join(root, 'x')], /unknown node .*nobody/],
    ['apply: a nonexistent --input directory', () => ['snapshot', 'apply', target(), '--input', path.join(root, 'missing')], /does not exist here/],
    ['apply: a directory without a manifest', () => ['snapshot', 'apply', target(), '--input', root], /cannot read .*manifest\.json/],
    ['apply: --snapshot without --from', () => ['snapshot', 'apply', target(), '--snapshot', 'snap_20250101_000000_abcd'], /--snapshot needs --from/],
    ['apply: --input and --snapshot', () => ['snapshot', 'apply', target(), '--input', root, '--snapshot', 'snap_x', '--from', source()], /cannot also be provided|--snapshot/],
    ['apply: neither --input nor --snapshot', () => ['snapshot', 'apply', target()], /needs --input DIR or --snapshot ID/],
    ['apply: an unknown target', () => ['snapshot', 'apply', 'nobody', '--input', root, '--from', source()], /unknown node .*nobody/],
    ['delete: an unknown snapshot', () => ['snapshot', 'delete', 'snap_20250101_000000_abcd', '--yes'], /unknown snapshot "snap_20250101_000000_abcd"/],
    ['list: an unknown node', () => ['snapshot', 'list', 'nobody'], /unknown node .*nobody/],
  ];
  it.each(refusals)('refuses %s with exit 2, changing nothing', async (_what, args, message) => {
    const before = await stateOf();
    const result = await runCli([...args(), '--db', pair.target.url]);
    expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 2, stdout: '' });
    expect(result.stderr).toMatch(message);
    expect(await stateOf()).toEqual(before);
  });

  it('generates with the live lines on a pipe (a relative --output made absolute) until ready; --json prints the status', async () => {
    snapshotDir = path.join(root, 'first');
    const relative = path.relative(process.cwd(), snapshotDir);
    expect(path.isAbsolute(relative)).toBe(false);
    const result = await runCli(['snapshot', 'generate', source(), '--output', relative, '--parallel', '2', '--large-table-threshold', '1MB',
      '--compression', 'gzip', '--expires', '2d', '--db', pair.target.url]);
    expect(result.stderr).not.toMatch(/error/);
    expect(result.code).toBe(0);
    const id = /generating snapshot (snap_\d{8}_\d{6}_[0-9a-f]{4}) of Quelle "S" into (\S+)/.exec(result.stderr);
    expect(id?.[2]).toBe(snapshotDir);
    snapshotId = id![1];
    // the pipe gets the lines once per state: generating, then ready
    expect(result.stderr).toMatch(/^\[[#-]{24}\]\s+\d+\.\d%\s+generating\s+\d+\/\d+ parts\s+\S+ written\s+\S+ stored \((\d+\.\dx|-)\)/m);
    expect(result.stderr).toMatch(/^\[#{24}\]\s+100\.0%\s+ready\s+(\d+)\/\1 parts\s+\S+ written\s+\S+ stored \(\d+\.\dx\)$/m);
    expect(result.stdout).toMatch(new RegExp(`^snapshot ${snapshotId} of Quelle "S" is ready at LSN [0-9A-F]+/[0-9A-F]+: 5 tables, \\d+ parts, .* stored \\(\\d+\\.\\dx, gzip\\)$`, 'm'));
    expect(result.stdout).toContain(`apply it: steep-repl snapshot apply <target> --input ${snapshotDir}`);
    expect(fs.existsSync(path.join(snapshotDir, 'manifest.json'))).toBe(true);
    const [row] = await query(pair.source.url, "SELECT state, compression, parallel, expires_at - created_at AS ttl FROM steep_repl.snapshots WHERE snapshot_id = $1", [snapshotId]);
    expect(row).toMatchObject({ state: 'ready', compression: 'gzip', parallel: 2 });
    expect(row.ttl).toMatchObject({ days: 2 });

    // --json: the ready status as snapshot_status has it; --no-wait --json: what generate_snapshot returned
    const json = await runCli(['snapshot', 'generate', source(), '--output', path.join(root, 'second'), '--compression', 'none', '--expires', '12h', '--json', '--db', pair.source.url]);
    expect(json.code).toBe(0);
    const status = JSON.parse(json.stdout);
    expect(status).toMatchObject({ state: 'ready', compression: 'none', output_dir: path.join(root, 'second'), source_node_id: source() });
    expect(status.parts_done).toBe(status.parts_total);
    const queued = await runCli(['snapshot', 'generate', source(), '--output', path.join(root, 'third'), '--expires', '30m', '--no-wait', '--json', '--db', pair.source.url]);
    expect(queued.code).toBe(0);
    expect(JSON.parse(queued.stdout)).toMatchObject({ state: 'generating', output_dir: path.join(root, 'third'), options: { expires: 1800 } });
    await waitUntil('the third snapshot ready', async () =>
      (await query(pair.source.url, "SELECT count(*)::int AS n FROM steep_repl.snapshots WHERE state = 'ready'"))[0].n === 3, 60000);
  });

  it('a generate into a directory that is not empty fails with exit 1, saying why, and leaves the files there alone', async () => {
    const full = path.join(root, 'full');
    fs.mkdirSync(full);
    fs.writeFileSync(path.join(full, 'mine.txt'), 'keep me');
    const result = await runCli(['snapshot', 'generate', source(), '--output', full, '--db', pair.source.url]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`^error: snapshot snap_\\w+ failed: the output directory ${full} is not empty \\(mine\\.txt\\): a snapshot is never written over other files$`, 'm'));
    expect(result.stderr).toMatch(/^hint: give a directory that does not exist yet or is empty/m);
    expect(fs.readdirSync(full)).toEqual(['mine.txt']);
    expect(fs.readFileSync(path.join(full, 'mine.txt'), 'utf8')).toBe('keep me');
    // the same directory as a live snapshot's: refused before anything is queued
    const again = await runCli(['snapshot', 'generate', source(), '--output', snapshotDir, '--db', pair.source.url]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(new RegExp(`error: snapshot ${snapshotId} \\(ready\\) already uses directory ${snapshotDir}`));
  });

  it('lists the snapshots from any registry, one node or all, in text and JSON', async () => {
    const all = await runCli(['snapshot', 'list', '--db', pair.target.url]);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/^SNAPSHOT\s+SOURCE\s+STATE\s+LSN\s+SIZE\s+EXPIRES\s+RETAINED WAL\s+WAL STATUS\s+APPLIES$/m);
    expect(all.stdout).toMatch(new RegExp(`^${snapshotId}\\s+Quelle "S"\\s+ready\\s+[0-9A-F]+/[0-9A-F]+\\s+\\S+ gzip \\(\\S+ raw\\)\\s+in 1d\\s+\\S+\\s+(reserved|extended)\\s+-$`, 'm'));
    expect(all.stdout.split('\n').filter((l) => /^snap_\w+\s/.test(l))).toHaveLength(4);
    expect(all.stdout).toMatch(/^snap_\w+\s+Quelle "S"\s+failed\s+-\s+-\s+-\s+-\s+-\s+-$/m);
    expect(all.stdout).toMatch(/^snap_\w+: the output directory .* is not empty/m);
    const one = await runCli(['snapshot', 'list', source(), '--json', '--db', pair.target.url]);
    expect(one.code).toBe(0);
    const rows = JSON.parse(one.stdout);
    expect(rows.map((r: { snapshot_id: string }) => r.snapshot_id)).toContain(snapshotId);
    expect(rows.find((r: { snapshot_id: string }) => r.snapshot_id === snapshotId)).toMatchObject({ state: 'ready', source_node_id: source(), slot_exists: true });
    const none = await runCli(['snapshot', 'list', target(), '--db', pair.target.url]);
    expect(none.stdout.trim()).toBe('no snapshots of ziel t (steep-repl snapshot generate <source> --output DIR)');
  });

  it('applies a snapshot to synchronized through the CLI, with writes on the source since it was generated', async () => {
    writer = startWriter(pair.source.url, sourceWrites(4000));
    await waitUntil("some writes", () => writer!.counts.transactions > 20);
    const apply = await runCli(['snapshot', 'apply', target(), '--input', path.relative(process.cwd(), snapshotDir), '--parallel', '2', '--db', pair.target.url]);
    expect(apply.stderr).toMatch(new RegExp(`applying snapshot ${snapshotId} of Quelle "S" at [0-9A-F]+/[0-9A-F]+: 5 tables`));
    expect(apply.stderr).toMatch(/^\[[#-]+\]\s+\d+\.\d%\s+verifying snapshot\s+\d+\/\d+ tables/m);
    expect(apply.stderr).toMatch(new RegExp(`^\\[[#-]+\\]\\s+\\d+\\.\\d%\\s+loading snapshot (${snapshotId}|${snapshotDir})\\s+\\d+/5 tables\\s+\\d+/\\d+ parts`, 'm'));
    expect(apply.stdout).toContain('ziel t is synchronized with Quelle "S"');
    expect(apply.code).toBe(0);
    await writer.stop();
    writer = undefined;
    await waitUntil('the target caught up', async () =>
      JSON.stringify(await contentHashes(pair.target.url)) === JSON.stringify(await contentHashes(pair.source.url)), 60000, 500);
    const status = await initStatus(pair.target);
    expect(status.progress).toMatchObject({ method: 'two-phase', options: { snapshot: snapshotDir, parallel: 2 } });
  });

  it('delete asks first (no answer: nothing changes), then drops the slot and removes the files', async () => {
    const before = await stateOf();
    const no = await runCli(['snapshot', 'delete', snapshotId, '--db', pair.target.url], {}, 'n\n');
    expect(no.code).toBe(4);
    expect(no.stderr).toMatch(new RegExp(`snapshot ${snapshotId} of Quelle "S": ready, \\S+ in ${snapshotDir}`));
    expect(no.stderr).toMatch(/nothing changed/);
    expect(await stateOf()).toEqual(before);

    const yes: CliResult = await runCli(['snapshot', 'delete', snapshotId, '--yes', '--json', '--db', pair.target.url]);
    expect(yes.code).toBe(0);
    expect(JSON.parse(yes.stdout)).toMatchObject({ snapshot_id: snapshotId, state: 'deleted', was: 'ready', files: 'removed' });
    expect(fs.existsSync(snapshotDir)).toBe(false);
    const [slot] = await query(pair.source.url, "SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = 'steep_' || $1", [snapshotId]);
    expect(slot.n).toBe(0);
    const list = await runCli(['snapshot', 'list', source(), '--db', pair.source.url]);
    expect(list.stdout).toMatch(new RegExp(`^${snapshotId}\\s+Quelle "S"\\s+deleted\\s`, 'm'));

    // by --node, in text
    const [{ snapshot_id: other }] = await query(pair.source.url, "SELECT snapshot_id FROM steep_repl.snapshots WHERE output_dir = $1", [path.join(root, 'second')]);
    const text = await runCli(['snapshot', 'delete', other, '--node', source(), '-y', '--db', pair.target.url]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`snapshot ${other} of Quelle "S" deleted: its slot is dropped`);
    expect(text.stdout).toContain(`its files in ${path.join(root, 'second')} are removed`);
    expect(fs.existsSync(path.join(root, 'second'))).toBe(false);
  });

  it('applies another snapshot by its id (--snapshot ID --from) after a detach, --json printing the settled status', async () => {
    const detach = await runCli(['node', 'detach', target(), '--yes', '--db', pair.target.url]);
    expect(detach.code).toBe(0);
    const [{ snapshot_id: third }] = await query(pair.source.url, 'SELECT snapshot_id FROM steep_repl.snapshots WHERE output_dir = $1', [path.join(root, 'third')]);
    const apply = await runCli(['snapshot', 'apply', target(), '--snapshot', third, '--from', source(), '--force', '--json', '--db', pair.target.url]);
    // --json: no words around the lines, the lines still on stderr
    expect(apply.stderr).not.toContain('applying');
    expect(apply.stderr).toMatch(new RegExp(`loading snapshot ${third}\\s+\\d+/5 tables`));
    expect(apply.code).toBe(0);
    const status = JSON.parse(apply.stdout);
    expect(status).toMatchObject({ state: 'synchronized', progress: { method: 'two-phase', options: { snapshot: third } }, method_state: { snapshot_id: third } });
    expect(status.parts.done).toBe(status.parts.total);
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
  });
});
