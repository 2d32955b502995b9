// node verify end to end on a PostgreSQL 18 pair, the node's agent running
// the job: a pair under continuous writes verifies equal five times in a
// row (lag-aware rechecks); differences made by hand on the node (with
// session_replication_role = replica, so they do not replicate) are each
// found with their key and kind and the node goes diverged with those
// tables; repaired, a later verify brings it back to synchronized. A
// difference still in flight is resolved by the rechecks; a key that keeps
// changing on the peer and that the node never holds as the peer had it is
// unsettled (the node stays synchronized), and differs once it stops.
// 3000.00 and 3000.0 are equal numerics; text, composite and no keys; an
// empty table; rows beyond either end of the peer's keys. Ranges are small
// here (STEEP_REPL_VERIFY_ROWS_PER_RANGE) so that a few thousand rows make
// many ranges to sample, bucket, split and drill.
import { escapeLiteral } from 'pg';
import { nodeConninfo } from '../lib/connection';
import { clusterA, clusterB, query, withClient } from './support/clusters';
import { ChannelRecorder } from './support/notifications';
import { createInitPair, InitPair, sourceWrites, waitCaughtUp } from './support/init-pair';
import { AgentProcess, stopAllAgents } from './support/processes';
import { replicatePair } from './support/verify-pair';
import { waitUntil } from './support/wait';
import { startWriter } from './support/writer';

jest.setTimeout(60000);

const rows = 3000;

// made on both nodes before the pair replicates
const extraSchemaSql = `
  CREATE TABLE public.words (w text PRIMARY KEY, n int NOT NULL);
  CREATE TABLE public.pairs (a int, b text, v numeric, PRIMARY KEY (a, b));
  CREATE TABLE public."No Key ☹" (v text, n numeric, at timestamptz);
  ALTER TABLE public."No Key ☹" REPLICA IDENTITY FULL;
  CREATE TABLE public.empty (id int PRIMARY KEY);
  CREATE TABLE public.amounts (id int PRIMARY KEY, amount numeric NOT NULL, j json, p point);
`;
const extraDataSql = `
  INSERT INTO public.words SELECT 'w' || md5(g::text), g FROM generate_series(1, 1500) g;
  INSERT INTO public.pairs SELECT g % 37, 'b' || g, g * 0.5 FROM generate_series(1, 1200) g;
  INSERT INTO public."No Key ☹" SELECT 'row ' || (g % 400), g % 3, '2024-01-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 900) g;
  INSERT INTO public.amounts SELECT g, 3000.00, '{"a": 1}', point(g, 0.1) FROM generate_series(1, 50) g;
`;

describe('verify', () => {
  let pair: InitPair;
  let agent: AgentProcess;
  let node: string;
  let peer: string;

  beforeAll(async () => {
    pair = await createInitPair({
      tag: 'verify',
      sourceCluster: clusterA(),
      targetCluster: clusterB(),
      sourceId: 'Vérif "Peer" A',
      targetId: 'verif node B ü',
      rows,
    });
    await query(pair.source.url, extraSchemaSql);
    await query(pair.target.url, extraSchemaSql);
    // ordered one way on the peer and another on the node
    await query(pair.source.url, 'CREATE TABLE public.names (n text COLLATE "en-x-icu" PRIMARY KEY)');
    await query(pair.target.url, 'CREATE TABLE public.names (n text COLLATE "C" PRIMARY KEY)');
    await query(pair.source.url, extraDataSql);
    await query(pair.source.url, "INSERT INTO public.names SELECT CASE WHEN g % 2 = 0 THEN 'a' ELSE 'B' END || g FROM generate_series(1, 1000) g");
    await query(pair.source.url, 'ANALYZE');
    await replicatePair(pair);
    await query(pair.target.url, 'ANALYZE');
    node = pair.target.id;
    peer = pair.source.id;
    agent = await AgentProcess.start(pair.target.url, [], { STEEP_REPL_VERIFY_ROWS_PER_RANGE: '100', STEEP_REPL_VERIFY_WAIT_MS: '5000' });
  });
  afterAll(async () => {
    await stopAllAgents();
    await pair?.drop();
  });

  const status = async (verifyId: number): Promise<any> => (await query(pair.target.url, 'SELECT steep_repl.verify_status($1) AS r', [verifyId]))[0].r;
  const nodeState = async (): Promise<string> => (await query(pair.target.url, 'SELECT init_state FROM steep_repl.nodes WHERE node_id = $1', [node]))[0].init_state;

  // A verify from SQL, followed to its end.
  async function verify(options: Record<string, unknown> = {}): Promise<any> {
    const [{ r: started }] = await query(pair.target.url, 'SELECT steep_repl.start_verify($1, NULL, $2) AS r', [node, options]);
    return waitUntil(
      `verify ${started.verify_id} to end`,
      async () => {
        const s = await status(started.verify_id);
        return !['queued', 'running'].includes(s.state) && s;
      },
      45000,
      100,
    );
  }

  const table = (s: any, label: string) => s.tables.find((t: any) => t.label === label);

  it('a pair under continuous writes verifies equal five times in a row, announcing its progress', async () => {
    const recorder = await ChannelRecorder.listen(pair.target.url, ['steep_repl_progress', 'steep_repl_events']);
    const writer = startWriter(pair.source.url, sourceWrites(rows), { pauseMs: 2 });
    try {
      await waitUntil('writes on the peer', () => writer.counts.transactions > 20);
      for (let i = 0; i < 5; i++) {
        const s = await verify();
        expect({ i, state: s.state, error: s.error, tables: s.tables.filter((t: any) => t.status !== 'equal').map((t: any) => t.label) }).toEqual({
          i,
          state: 'equal',
          error: null,
          tables: [],
        });
        expect(s.tables_done).toBe(s.tables_total);
        expect(Number(s.percent)).toBe(100);
      }
    } finally {
      await writer.stop();
    }
    expect(writer.counts.transactions).toBeGreaterThan(100);
    expect(await nodeState()).toBe('synchronized');
    // in-flight changes were seen and resolved by the rechecks, not missed
    const compared = agent.lines.filter((l) => l.event === 'verify.table_compared');
    expect(compared.some((l) => (l.ranges_differing as number) > 0 && (l.recheck_rounds as number) > 0 && l.status === 'equal')).toBe(true);
    expect(compared.find((l) => l.table === 'public.names')).toMatchObject({
      status: 'equal',
      ranges: 10,
      note: 'key column(s) "n" ordered by COLLATE "C": their collations differ between the nodes or are not deterministic',
    });

    await withClient(pair.target.url, (c) => recorder.fence(c));
    const progress = recorder.received.filter((r) => r.channel === 'steep_repl_progress').map((r) => JSON.parse(r.payload));
    expect(progress.length).toBeGreaterThan(10);
    expect(progress.every((p) => p.kind === 'verify' && p.node_id === node && p.peer_node_id === peer)).toBe(true);
    expect(progress.some((p) => p.state === 'running' && p.phase === 'hashing' && typeof p.current_table === 'string')).toBe(true);
    const events = recorder.received.filter((r) => r.channel === 'steep_repl_events').map((r) => JSON.parse(r.payload).event);
    expect(events.filter((e) => e === 'verify.started')).toHaveLength(5);
    expect(events.filter((e) => e === 'verify.completed')).toHaveLength(5);
    await recorder.close();
    // the job's own log lines, one per table compared
    expect(agent.lines.some((l) => l.event === 'verify.table_compared' && l.table === 'public.accounts' && l.status === 'equal')).toBe(true);
  });

  it('finds each hand-made difference with its key and kind; the node goes diverged with those tables', async () => {
    await waitCaughtUp(pair);
    await query(
      pair.target.url,
      `SET session_replication_role = replica;
       DELETE FROM public.accounts WHERE id = 5;
       INSERT INTO public.accounts VALUES (-7, 1, 'before the smallest key'), (99999999, 2, 'beyond the largest key');
       UPDATE public.accounts SET note = 'changed on the node' WHERE id = 10;
       DELETE FROM public.words WHERE n = 3;
       UPDATE public.pairs SET v = v + 1 WHERE a = 2 AND b = 'b39';
       INSERT INTO public."No Key ☹" VALUES ('row 1', 1, '2024-01-01 01:00:00+00');
       UPDATE public.amounts SET amount = 3000.0 WHERE id = 1;
       UPDATE public.events SET payload = 'changed' WHERE id = 12 AND region = 1 + 12 % 4;`,
    );
    const [{ w }] = await query(pair.source.url, 'SELECT w FROM public.words WHERE n = 3');
    const recorder = await ChannelRecorder.listen(pair.target.url, ['steep_repl_state']);
    const s = await verify({ key_limit: 10 });
    expect(s.state).toBe('differs');
    expect(s.tables.filter((t: any) => t.status === 'differs').map((t: any) => t.label)).toEqual([
      'public."No Key ☹"',
      'public.accounts',
      'public.events',
      'public.pairs',
      'public.words',
    ]);
    expect(table(s, 'public.accounts')).toMatchObject({ compared: 'key_ranges', rows_missing: 1, rows_extra: 2, rows_different: 1, rows_unsettled: 0 });
    expect(table(s, 'public.accounts').differences).toEqual([
      { key: { id: 10 }, kind: 'different' },
      { key: { id: -7 }, kind: 'extra' },
      { key: { id: 99999999 }, kind: 'extra' },
      { key: { id: 5 }, kind: 'missing' },
    ]);
    expect(table(s, 'public.words').differences).toEqual([{ key: { w }, kind: 'missing' }]);
    expect(table(s, 'public.pairs').differences).toEqual([{ key: { a: 2, b: 'b39' }, kind: 'different' }]);
    expect(table(s, 'public.events').differences).toEqual([{ key: { id: 12, region: 1 }, kind: 'different' }]);
    expect(table(s, 'public."No Key ☹"')).toMatchObject({ compared: 'whole_table', note: 'no primary key: compared whole', rows_extra: 1, rows_missing: 0 });
    expect(table(s, 'public."No Key ☹"').differences).toEqual([{ key: { v: 'row 1', n: 1, at: '2024-01-01T01:00:00+00:00' }, kind: 'extra' }]);
    // 3000.0 on the node, 3000.00 on the peer: the same numeric
    expect(table(s, 'public.amounts')).toMatchObject({ status: 'equal', rows_compared: 50 });
    expect(table(s, 'public.empty')).toMatchObject({ status: 'equal', rows_compared: 0 });

    expect(await nodeState()).toBe('diverged');
    expect(await query(pair.target.url, 'SELECT schema_name, table_name, verify_id::int, rows_missing::int, rows_extra::int, rows_different::int FROM steep_repl.node_divergence ORDER BY 1, 2')).toEqual([
      { schema_name: 'public', table_name: 'No Key ☹', verify_id: s.verify_id, rows_missing: 0, rows_extra: 1, rows_different: 0 },
      { schema_name: 'public', table_name: 'accounts', verify_id: s.verify_id, rows_missing: 1, rows_extra: 2, rows_different: 1 },
      { schema_name: 'public', table_name: 'events', verify_id: s.verify_id, rows_missing: 0, rows_extra: 0, rows_different: 1 },
      { schema_name: 'public', table_name: 'pairs', verify_id: s.verify_id, rows_missing: 0, rows_extra: 0, rows_different: 1 },
      { schema_name: 'public', table_name: 'words', verify_id: s.verify_id, rows_missing: 1, rows_extra: 0, rows_different: 0 },
    ]);
    await withClient(pair.target.url, (c) => recorder.fence(c));
    const transitions = recorder.received.map((r) => JSON.parse(r.payload));
    expect(transitions).toEqual([expect.objectContaining({ node_id: node, from: 'synchronized', to: 'diverged' })]);
    await recorder.close();
    const [event] = await query(pair.target.url, "SELECT details FROM steep_repl.audit_log WHERE event = 'verify.completed' ORDER BY audit_id DESC LIMIT 1");
    expect(event.details).toMatchObject({ verify_id: s.verify_id, outcome: 'differs', state: 'diverged', rows_missing: 2, rows_extra: 3, rows_different: 3 });

    // a key limit keeps that many keys and counts them all
    const limited = await verify({ tables: ['public.accounts'], key_limit: 2 });
    expect(table(limited, 'public.accounts')).toMatchObject({ rows_missing: 1, rows_extra: 2, rows_different: 1 });
    expect(table(limited, 'public.accounts').differences).toHaveLength(2);
    expect(await query(pair.target.url, 'SELECT count(*)::int AS n FROM steep_repl.verify_differences WHERE verify_id = $1', [limited.verify_id])).toEqual([{ n: 2 }]);
  });

  it('after the repair, a verify of the differing tables finds them equal and the node synchronized again', async () => {
    await query(
      pair.target.url,
      `SET session_replication_role = replica;
       DELETE FROM public.accounts WHERE id IN (-7, 99999999);
       DELETE FROM public."No Key ☹" WHERE ctid = (SELECT max(ctid) FROM public."No Key ☹" WHERE v = 'row 1' AND n = 1);`,
    );
    for (const t of ['public.accounts', 'public.words', 'public.pairs', 'public.events']) {
      const rowsOf = await query(pair.source.url, `SELECT * FROM ${t}`);
      const columns = Object.keys(rowsOf[0]);
      await withClient(pair.target.url, async (c) => {
        await c.query('SET session_replication_role = replica');
        await c.query(
          `INSERT INTO ${t} SELECT * FROM jsonb_populate_recordset(NULL::${t}, $1)
           ON CONFLICT (${t === 'public.accounts' ? 'id' : t === 'public.words' ? 'w' : t === 'public.pairs' ? 'a, b' : 'id, region'})
           DO UPDATE SET ${columns.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`,
          [JSON.stringify(rowsOf)],
        );
      });
    }
    const some = await verify({ tables: ['public.accounts', 'words'] });
    expect(some.state).toBe('equal');
    expect(await nodeState()).toBe('diverged');
    const rest = await verify({ schema: 'public' });
    expect(rest.state).toBe('equal');
    expect(await nodeState()).toBe('synchronized');
    expect(await query(pair.target.url, 'SELECT count(*)::int AS n FROM steep_repl.node_divergence')).toEqual([{ n: 0 }]);
  });

  const runOf = async (verifyId: number) => (await query(pair.target.url, 'SELECT state, phase FROM steep_repl.verify_runs WHERE verify_id = $1', [verifyId]))[0];
  const begin = async (options: Record<string, unknown> = {}) =>
    (await query(pair.target.url, 'SELECT steep_repl.start_verify($1, NULL, $2) AS r', [node, options]))[0].r.verify_id as number;
  const subscription = (enabled: boolean) => query(pair.target.url, `ALTER SUBSCRIPTION ${pair.replicationName} ${enabled ? 'ENABLE' : 'DISABLE'}`);

  it('a stalled node fails the verify (never diverged); a cancel mid-run ends it cancelled; a killed agent\'s verify runs again', async () => {
    await waitCaughtUp(pair);
    // the node stops applying; the peer gets a row the node cannot have
    await subscription(false);
    await query(pair.source.url, "INSERT INTO public.accounts VALUES (77777777, 1, 'not applied yet')");

    // cancelled while it waits for the node in its recheck
    const cancelled = await begin({ tables: ['public.accounts'] });
    await waitUntil('the recheck', async () => (await runOf(cancelled)).phase === 'rechecking', 20000, 25);
    const asked = Date.now();
    expect((await query(pair.target.url, 'SELECT steep_repl.cancel_verify($1) AS r', [node]))[0].r).toMatchObject({ cancel_requested: true });
    await waitUntil('the cancel', async () => (await runOf(cancelled)).state === 'cancelled', 10000, 25);
    expect(Date.now() - asked).toBeLessThan(3000);
    expect(await nodeState()).toBe('synchronized');

    // the agent killed in the same place; the next one runs the job again, from the start
    const killed = await begin({ tables: ['public.accounts'] });
    await waitUntil('the recheck', async () => (await runOf(killed)).phase === 'rechecking', 20000, 25);
    await agent.stop('SIGKILL');
    await subscription(true);
    agent = await AgentProcess.start(pair.target.url, [], { STEEP_REPL_VERIFY_ROWS_PER_RANGE: '100', STEEP_REPL_VERIFY_WAIT_MS: '5000' });
    const again = await waitUntil('the verify run again', async () => {
      const s = await status(killed);
      return !['queued', 'running'].includes(s.state) && s;
    }, 30000, 100);
    expect({ state: again.state, rows: table(again, 'public.accounts').rows_compared > 3000 }).toEqual({ state: 'equal', rows: true });
    expect(agent.lines.some((l) => l.event === 'verify.job_started' && l.verify_id === killed)).toBe(true);

    // stalled past STEEP_REPL_VERIFY_WAIT_MS: failed, saying why, nothing diverged
    await waitCaughtUp(pair);
    await subscription(false);
    await query(pair.source.url, "INSERT INTO public.accounts VALUES (77777778, 1, 'not applied yet')");
    const failed = await verify({ tables: ['public.accounts'] });
    await subscription(true);
    expect(failed.state).toBe('failed');
    expect(failed.error).toMatch(/^node "verif node B ü" has not applied past node "Vérif ""Peer"" A"'s position [0-9A-F]+\/[0-9A-F]+ within 5 s \(its slot .* confirmed .*\): subscription .* is disabled$/);
    expect(failed.hint).toMatch(/ALTER SUBSCRIPTION .* ENABLE/);
    expect(table(failed, 'public.accounts').status).not.toBe('differs');
    expect(await nodeState()).toBe('synchronized');
    expect(await query(pair.target.url, 'SELECT count(*)::int AS n FROM steep_repl.node_divergence')).toEqual([{ n: 0 }]);
    const [event] = await query(pair.target.url, "SELECT details FROM steep_repl.audit_log WHERE event = 'verify.failed' ORDER BY audit_id DESC LIMIT 1");
    expect(event.details).toMatchObject({ verify_id: failed.verify_id, state: 'synchronized' });
  });

  it('a table defined differently on the two nodes fails the run naming it, before anything is compared', async () => {
    await query(pair.target.url, 'ALTER TABLE public.docs ADD COLUMN "Extra" int');
    try {
      const failed = await verify();
      expect(failed.state).toBe('failed');
      expect(failed.error).toBe('table public.docs is defined differently on the two nodes, so its rows cannot be compared: column "Extra" is only on node "verif node B ü"');
      expect(failed.hint).toMatch(/steep-repl schema compare/);
      expect(failed.tables.every((t: any) => t.status === 'pending')).toBe(true);
      expect(await nodeState()).toBe('synchronized');
    } finally {
      await query(pair.target.url, 'ALTER TABLE public.docs DROP COLUMN "Extra"');
    }
  });

  it('a difference still in flight when compared is resolved by the rechecks: equal, nothing diverged', async () => {
    await waitCaughtUp(pair);
    // the peer gets a row the node applies only once the verify found it missing and rechecks it
    await subscription(false);
    let id: number;
    try {
      await query(pair.source.url, "INSERT INTO public.accounts VALUES (66666666, 1, 'in flight')");
      id = await begin({ tables: ['public.accounts'] });
      await waitUntil('the recheck', async () => (await runOf(id)).phase === 'rechecking', 20000, 25);
    } finally {
      await subscription(true);
    }
    const s = await waitUntil('the verify to end', async () => {
      const r = await status(id);
      return !['queued', 'running'].includes(r.state) && r;
    }, 30000, 100);
    expect({ state: s.state, error: s.error }).toEqual({ state: 'equal', error: null });
    expect(table(s, 'public.accounts')).toMatchObject({ status: 'equal', rows_missing: 0, rows_unsettled: 0, differences: [] });
    // found in the first pass, resolved by the first round
    expect(agent.lines.find((l) => l.event === 'verify.table_compared' && l.verify_id === id)).toMatchObject({ status: 'equal', ranges_differing: 1, recheck_rounds: 1 });
    expect(await nodeState()).toBe('synchronized');
    await query(pair.source.url, 'DELETE FROM public.accounts WHERE id = 66666666');
  });

  it('a key that keeps changing on the peer, which the node never holds as the peer had it, is unsettled (not diverged); once it stops changing it differs', async () => {
    // A writer driven by the apply itself: on the node, a trigger that fires in the apply worker
    // (ENABLE ALWAYS) changes the hot key's note as it arrives, so the node never holds a value
    // the peer had, and commits the peer's next value of that key (dblink) before the change it
    // applies is committed. So when a round's first read of the peer sees a value, the node has
    // not finished applying it; the round waits until the node applied past the peer's position,
    // so past that value, whose successor is committed by then: the round's second read of the
    // peer sees another value, in every round, however short. (A writer on a timer can miss a
    // short round, which would make the key persistent.) The apply worker's search_path is
    // empty: public.dblink_*.
    const hot = 424242;
    const balance = async () => Number((await query(pair.source.url, 'SELECT balance FROM public.accounts WHERE id = $1', [hot]))[0].balance);
    const appName = 'steep-repl verify test: hot key';
    const conninfo = `${nodeConninfo({ host: pair.source.cluster.host, port: pair.source.cluster.port, dbname: pair.source.name, user: pair.source.cluster.user })} application_name='${appName}'`;
    const onArrival = (next: boolean) => `
      CREATE OR REPLACE FUNCTION public.hot_key() RETURNS trigger LANGUAGE plpgsql AS $f$
      BEGIN
        IF NEW.id = ${hot} THEN
          NEW.note := NEW.note || ' (changed on arrival)';
          ${next ? `IF NOT coalesce('hot' = ANY (public.dblink_get_connections()), false) THEN PERFORM public.dblink_connect('hot', ${escapeLiteral(conninfo)}); END IF;
          PERFORM public.dblink_exec('hot', 'UPDATE public.accounts SET balance = balance + 1 WHERE id = ${hot}');` : ''}
        END IF;
        RETURN NEW;
      END $f$`;
    // the apply worker's session on the peer
    const endPeerSession = () => query(pair.source.url, 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [appName]);
    const differences = (verifyId: number) =>
      query(pair.target.url, 'SELECT key, kind FROM steep_repl.verify_differences WHERE verify_id = $1 ORDER BY kind', [verifyId]);
    const compared = (verifyId: number) => agent.lines.find((l) => l.event === 'verify.table_compared' && l.verify_id === verifyId);
    const lastCompleted = async () =>
      (await query(pair.target.url, "SELECT details FROM steep_repl.audit_log WHERE event = 'verify.completed' ORDER BY audit_id DESC LIMIT 1"))[0].details;

    await waitCaughtUp(pair);
    await query(
      pair.target.url,
      `CREATE EXTENSION dblink;
       ${onArrival(true)};
       CREATE TRIGGER hot_key BEFORE INSERT OR UPDATE ON public.accounts FOR EACH ROW EXECUTE FUNCTION public.hot_key();
       ALTER TABLE public.accounts ENABLE ALWAYS TRIGGER hot_key;`,
    );
    try {
      try {
        // its arrival on the node starts the writes
        await query(pair.source.url, "INSERT INTO public.accounts VALUES ($1, 0, 'hot')", [hot]);
        await waitUntil('the hot key to change on the peer', async () => (await balance()) >= 3, 20000, 50);

        const before = await balance();
        const unsettled = await verify({ tables: ['public.accounts'] });
        expect(await balance()).toBeGreaterThan(before);
        expect({ state: unsettled.state, error: unsettled.error, node_state: unsettled.node_state }).toEqual({ state: 'unsettled', error: null, node_state: 'synchronized' });
        expect(table(unsettled, 'public.accounts')).toMatchObject({ status: 'unsettled', rows_missing: 0, rows_extra: 0, rows_different: 0, rows_unsettled: 1 });
        expect(await differences(unsettled.verify_id)).toEqual([{ key: { id: hot }, kind: 'unsettled' }]);
        expect(compared(unsettled.verify_id)).toMatchObject({ status: 'unsettled', ranges_differing: 1, recheck_rounds: 5 });
        expect(await nodeState()).toBe('synchronized');
        expect(await query(pair.target.url, 'SELECT count(*)::int AS n FROM steep_repl.node_divergence')).toEqual([{ n: 0 }]);
        expect(await lastCompleted()).toMatchObject({ verify_id: unsettled.verify_id, outcome: 'unsettled', state: 'synchronized', tables_unsettled: ['public.accounts'], tables_differing: [], rows_unsettled: 1 });
      } finally {
        // the writes stop: the trigger only changes the key as it arrives. The change being applied
        // when the function was replaced may still commit one more value on the peer: applied too
        // once the node caught up twice.
        await query(pair.target.url, onArrival(false));
        await waitCaughtUp(pair);
        await waitCaughtUp(pair);
        await endPeerSession();
      }
      const stopped = await balance();
      await waitCaughtUp(pair);
      expect(await balance()).toBe(stopped);

      // the peer's value stays, the node's is still not it: persistent
      const differs = await verify({ tables: ['public.accounts'] });
      expect({ state: differs.state, node_state: differs.node_state }).toEqual({ state: 'differs', node_state: 'diverged' });
      expect(table(differs, 'public.accounts')).toMatchObject({ status: 'differs', rows_different: 1, rows_unsettled: 0 });
      expect(await differences(differs.verify_id)).toEqual([{ key: { id: hot }, kind: 'different' }]);
      expect(compared(differs.verify_id)).toMatchObject({ status: 'differs', recheck_rounds: 1 });
      expect(await query(pair.target.url, 'SELECT table_name, verify_id::int, rows_different::int FROM steep_repl.node_divergence')).toEqual([
        { table_name: 'accounts', verify_id: differs.verify_id, rows_different: 1 },
      ]);
    } finally {
      await query(pair.target.url, 'DROP TRIGGER IF EXISTS hot_key ON public.accounts; DROP FUNCTION IF EXISTS public.hot_key(); DROP EXTENSION IF EXISTS dblink');
      await endPeerSession();
    }

    // the next change of the key arrives as it is
    await query(pair.source.url, "UPDATE public.accounts SET note = 'hot, repaired' WHERE id = $1", [hot]);
    await waitCaughtUp(pair);
    const repaired = await verify({ tables: ['public.accounts'] });
    expect({ state: repaired.state, node_state: repaired.node_state }).toEqual({ state: 'equal', node_state: 'synchronized' });
    expect(await nodeState()).toBe('synchronized');
    expect(await query(pair.target.url, 'SELECT count(*)::int AS n FROM steep_repl.node_divergence')).toEqual([{ n: 0 }]);
    await query(pair.source.url, 'DELETE FROM public.accounts WHERE id = $1', [hot]);
  });
});
