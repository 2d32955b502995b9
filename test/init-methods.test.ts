// Init methods are rows of steep_repl.init_methods: start_init refuses an
// unknown method, one marked unavailable and an option of another method
// (SR004, naming what is allowed, nothing changed), from psql and from
// node start; the live view reads the methods the node marks available
// (it offers them but manual, which starts with node prepare: tui.test.ts).
import { DatabaseError } from 'pg';
import { ClusterWatch } from '../tui/cluster-watch';
import { clusterA, clusterB, query } from './support/clusters';
import { createInitPair, InitPair } from './support/init-pair';
import { runCli } from './support/processes';
import { registryState } from './support/registry-state';

jest.setTimeout(60000);

// What a refused start must leave as it was, on the target and the source.
async function stateOf(pair: InitPair): Promise<unknown> {
  const [queued] = await query(
    pair.target.url,
    `SELECT (SELECT count(*)::int FROM graphile_worker.jobs) AS jobs,
            (SELECT count(*)::int FROM steep_repl.init_progress) AS progress_rows`,
  );
  return { target: await registryState(pair.target.url), source: await registryState(pair.source.url), queued };
}

async function refusal(url: string, sql: string, params: unknown[]): Promise<DatabaseError> {
  try {
    await query(url, sql, params);
  } catch (err) {
    return err as DatabaseError;
  }
  throw new Error(`not refused: ${sql}`);
}

describe('init methods', () => {
  let pair: InitPair;
  let available: string[];

  beforeAll(async () => {
    pair = await createInitPair({
      tag: 'init_methods',
      sourceCluster: clusterA(),
      targetCluster: clusterB(),
      sourceId: 'Methods "src"',
      targetId: 'methods tgt',
      rows: 200,
    });
    available = (await query(pair.target.url, 'SELECT method FROM steep_repl.init_methods WHERE available ORDER BY position')).map((r) => r.method);
  });
  afterAll(async () => {
    await pair?.drop();
  });

  it('lists snapshot, direct, two-phase and manual as the available methods of this release', () => {
    expect(available).toEqual(['snapshot', 'direct', 'two-phase', 'manual']);
  });

  it('start_init refuses an unknown method, an unavailable one and an option of another method with SR004, changing nothing', async () => {
    const before = await stateOf(pair);
    const start = 'SELECT steep_repl.start_init($1, $2, $3, $4)';
    const unknown = await refusal(pair.target.url, start, [pair.target.id, pair.source.id, 'bogus', {}]);
    expect(unknown).toMatchObject({ code: 'SR004', message: "unknown init method 'bogus'", hint: 'methods: snapshot, direct, two-phase, manual' });

    // marked unavailable on this node only (as a method of a later release would be)
    await query(pair.target.url, "UPDATE steep_repl.init_methods SET available = false WHERE method = 'two-phase'");
    try {
      const unavailable = await refusal(pair.target.url, start, [pair.target.id, pair.source.id, 'two-phase', { snapshot: '/nowhere' }]);
      expect(unavailable).toMatchObject({ code: 'SR004', message: "init method 'two-phase' is not available yet", hint: 'methods: snapshot, direct, manual' });
    } finally {
      await query(pair.target.url, "UPDATE steep_repl.init_methods SET available = true WHERE method = 'two-phase'");
    }

    // manual needs its backup named: the init waits for the DBA's restore of it
    const noBackup = await refusal(pair.target.url, start, [pair.target.id, pair.source.id, 'manual', {}]);
    expect(noBackup.code).toBe('SR004');
    expect(noBackup.message).toMatch(/^method manual needs option backup/);

    const foreign = await refusal(pair.target.url, start, [pair.target.id, pair.source.id, 'snapshot', { split_tables_larger_than: '1GB' }]);
    expect(foreign.code).toBe('SR004');
    expect(foreign.message).toBe("init option 'split_tables_larger_than' does not apply to method snapshot");
    expect(foreign.hint).toMatch(/^method snapshot takes: schema_sync, force, resume, timeout, lag_threshold_bytes, parallel, reverse_slot_ttl; /);
    expect(foreign.hint).toMatch(/split_tables_larger_than is an option of: direct$/);

    // No method given means snapshot, so its options are checked the same way.
    const byDefault = await refusal(pair.target.url, 'SELECT steep_repl.start_init($1, $2, p_options => $3)', [
      pair.target.id,
      pair.source.id,
      { max_parts: 4 },
    ]);
    expect(byDefault).toMatchObject({ code: 'SR004', message: "init option 'max_parts' does not apply to method snapshot" });
    expect(await stateOf(pair)).toEqual(before);
  });

  it('node start refuses an unknown method with exit 2 and the available ones, and manual with the commands it takes, changing nothing', async () => {
    const before = await stateOf(pair);
    for (const method of ['bogus', 'Snapshot']) {
      const result = await runCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--method', method, '--db', pair.target.url]);
      expect({ method, code: result.code, stdout: result.stdout }).toEqual({ method, code: 2, stdout: '' });
      expect(result.stderr).toMatch(new RegExp(`init method '${method}'`));
      expect(result.stderr).toMatch(/hint: methods: snapshot, direct, two-phase, manual/);
    }
    const manual = await runCli(['node', 'start', pair.target.id, '--from', pair.source.id, '--method', 'manual', '--db', pair.target.url]);
    expect({ code: manual.code, stdout: manual.stdout }).toEqual({ code: 2, stdout: '' });
    expect(manual.stderr).toMatch(/steep-repl node prepare/);
    expect(manual.stderr).toMatch(/node complete/);
    expect(await stateOf(pair)).toEqual(before);
  });

  it("the live view's method question reads the methods the node marks available from the node", async () => {
    const watch = new ClusterWatch({ db: pair.target.url, applicationName: 'steep-repl test methods' });
    await watch.start();
    try {
      const offered = async () => (await watch.initMethods(pair.target.id)).map((m) => m.method);
      expect(await offered()).toEqual(available);
      // Marked unavailable on this node only, it is no longer offered: no list of its own in the view.
      await query(pair.target.url, "UPDATE steep_repl.init_methods SET available = false WHERE method = 'direct'");
      try {
        expect(await offered()).toEqual(['snapshot', 'two-phase', 'manual']);
      } finally {
        await query(pair.target.url, "UPDATE steep_repl.init_methods SET available = true WHERE method = 'direct'");
      }
      expect(await offered()).toEqual(available);
    } finally {
      await watch.stop();
    }
  });
});
