// Direct init end to end: steep-repl's own copy engine on one exported
// snapshot, tables split into parts, while a writer keeps writing to the
// source; the target's agent as a real process.
import { checkInitPrivileges } from '../agent/init/privileges';
import { clusterA, clusterB, query, withClient } from './support/clusters';
import { contentHashes, createInitPair, InitPair, initStatus, sourceWrites, userTables, waitCaughtUp } from './support/init-pair';
import { AgentProcess, processRunning, stopAllAgents } from './support/processes';
import { waitUntil } from './support/wait';
import { startWriter } from './support/writer';

jest.setTimeout(180000);

// No usable key: split by ctid ranges; replicates through REPLICA IDENTITY
// FULL. An identity column and a generated one (not copied: the target
// computes it).
const extraSql = `
  CREATE TABLE public."No Key" (a int NOT NULL, b text NOT NULL);
  ALTER TABLE public."No Key" REPLICA IDENTITY FULL;
  CREATE TABLE public.ledger (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, amount int NOT NULL,
                              doubled int GENERATED ALWAYS AS (amount * 2) STORED);
`;
const tables = [...userTables, 'public."No Key"', 'public.ledger'];

describe('direct init', () => {
  let pair: InitPair;
  let agent: AgentProcess;

  beforeAll(async () => {
    pair = await createInitPair({ tag: 'init_direct', sourceCluster: clusterA(), targetCluster: clusterB(), rows: 60000 });
    await query(pair.source.url, extraSql);
    await query(pair.target.url, extraSql);
    await query(
      pair.source.url,
      `INSERT INTO public."No Key" SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 40000) g;
       INSERT INTO public.ledger (amount) SELECT g FROM generate_series(1, 30000) g; ANALYZE`,
    );
    agent = await AgentProcess.start(pair.target.url);
  });
  afterAll(async () => {
    await stopAllAgents();
    await pair?.drop();
  });

  it('copies in parts on one snapshot under writes, and ends with equal content', async () => {
    const writer = startWriter(pair.source.url, sourceWrites(60000), { pauseMs: 5 });
    try {
      await query(pair.target.url, `SELECT steep_repl.start_init($1, $2, 'direct', '{"parallel": 3, "split_tables_larger_than": "1MB", "max_parts": 6}')`, [
        pair.target.id,
        pair.source.id,
      ]);
      await waitUntil('synchronized', async () => {
        const s = await initStatus(pair.target);
        if (s.state === 'failed') throw new Error(s.progress.error);
        return s.state === 'synchronized';
      }, 120000);
    } finally {
      await writer.stop();
    }
    await waitCaughtUp(pair);
    expect(await contentHashes(pair.target.url, tables)).toEqual(await contentHashes(pair.source.url, tables));
    const parts = await query(pair.target.url, 'SELECT leaf_name, split, part_count, state, copies, rows_copied::int FROM steep_repl.init_parts ORDER BY 1, part_no');
    expect(parts.every((p) => p.state === 'done' && p.copies === 1)).toBe(true);
    const accounts = parts.find((p) => p.leaf_name === 'accounts');
    expect(accounts).toMatchObject({ split: 'key' });
    expect(accounts.part_count).toBeGreaterThanOrEqual(4);
    // cut at the key's quantiles: the writer's far-off ids leave no part empty
    expect(parts.filter((p) => p.leaf_name === 'accounts').every((p) => p.rows_copied > 5000)).toBe(true);
    expect(parts.find((p) => p.leaf_name === 'No Key')).toMatchObject({ split: 'ctid' });
    // the partitioned table by leaf; docs' size is its TOAST
    expect(parts.filter((p) => p.leaf_name.startsWith('events_')).length).toBeGreaterThanOrEqual(3);
    expect(parts.find((p) => p.leaf_name === 'docs')).toMatchObject({ split: 'key', part_count: 3 });
    // sequences, the identity's among them (the writer's own moved on after the copy took it)
    const sequences = "SELECT sequencename, last_value::int FROM pg_sequences WHERE sequencename IN ('ledger_id_seq', 'ticket_seq') ORDER BY 1";
    expect(await query(pair.target.url, sequences)).toEqual([
      { sequencename: 'ledger_id_seq', last_value: 30000 },
      { sequencename: 'ticket_seq', last_value: 4242 },
    ]);
    // the copied rows went through an origin: the done parts logged their copies
    // (the agent's log lines arrive through a pipe, maybe after the status read)
    await waitUntil('a log line per part copied', async () => agent.lines.filter((l) => l.event === 'init.part_copied').length >= parts.length, 5000);
    expect(agent.lines.filter((l) => l.event === 'init.part_copied').length).toBe(parts.length);
  });

  it("names what the agent's role on the target lacks to copy itself, before anything is created", async () => {
    const role = `copy "limited" ü ${process.pid}`;
    const roleIdent = `"${role.replace(/"/g, '""')}"`;
    const tables = [
      { schema_name: 'public', table_name: 'accounts' },
      { schema_name: 'Sales ünit', table_name: 'Order "Items" é' },
    ];
    await query(clusterB().url(), `CREATE ROLE ${roleIdent}`);
    try {
      await query(pair.target.url, `GRANT pg_create_subscription TO ${roleIdent}; GRANT CREATE ON DATABASE "${pair.target.name}" TO ${roleIdent}`);
      const check = () =>
        withClient(pair.source.url, (source) =>
          withClient(pair.target.url, async (target) => {
            await target.query(`SET ROLE ${roleIdent}`);
            await checkInitPrivileges({ source, target, sourceNodeId: 'a', targetNodeId: 'b', tables, publication: 'p', agentCopies: true });
          }),
        );
      const refused = await check().then(() => undefined, (err) => err);
      expect(refused?.message).toContain(`role ${roleIdent} on target node b lacks SET on session_replication_role`);
      expect(refused?.hint).toContain(`GRANT SET ON PARAMETER session_replication_role TO ${roleIdent};`);
      expect(refused?.hint).toContain(`GRANT EXECUTE ON FUNCTION pg_replication_origin_session_setup(text) TO ${roleIdent};`);
      expect(refused?.hint).toContain(`GRANT USAGE ON SCHEMA "Sales ünit" TO ${roleIdent};`);
      expect(refused?.hint).toContain(`GRANT INSERT, DELETE, TRUNCATE ON public.accounts, "Sales ünit"."Order ""Items"" é" TO ${roleIdent};`);
      // a merge's exchange reads, inserts and updates (agent/merge/run.ts)
      const merging = await withClient(pair.source.url, (source) =>
        withClient(pair.target.url, async (target) => {
          await target.query(`SET ROLE ${roleIdent}`);
          const tablePrivileges = ['SELECT', 'INSERT', 'UPDATE'];
          await checkInitPrivileges({ source, target, sourceNodeId: 'a', targetNodeId: 'b', tables, publication: 'p', agentCopies: true, tablePrivileges });
        }),
      ).then(() => undefined, (err) => err);
      expect(merging?.hint).toContain(`GRANT SELECT, INSERT, UPDATE ON public.accounts, "Sales ünit"."Order ""Items"" é" TO ${roleIdent};`);
      // the snapshot method's check does not ask for them
      await expect(
        withClient(pair.source.url, (source) =>
          withClient(pair.target.url, async (target) => {
            await target.query(`SET ROLE ${roleIdent}`);
            await checkInitPrivileges({ source, target, sourceNodeId: 'a', targetNodeId: 'b', tables, publication: 'p' });
          }),
        ),
      ).resolves.toBeUndefined();
      await query(
        pair.target.url,
        `GRANT SET ON PARAMETER session_replication_role TO ${roleIdent};
         GRANT EXECUTE ON FUNCTION pg_replication_origin_create(text), pg_replication_origin_session_setup(text),
                                   pg_replication_origin_session_reset() TO ${roleIdent};
         GRANT USAGE ON SCHEMA "Sales ünit" TO ${roleIdent};
         GRANT INSERT, DELETE, TRUNCATE ON public.accounts, "Sales ünit"."Order ""Items"" é" TO ${roleIdent}`,
      );
      await expect(check()).resolves.toBeUndefined();
    } finally {
      await query(pair.target.url, `REVOKE ALL ON public.accounts, "Sales ünit"."Order ""Items"" é" FROM ${roleIdent};
        REVOKE USAGE ON SCHEMA "Sales ünit" FROM ${roleIdent};
        REVOKE ALL ON DATABASE "${pair.target.name}" FROM ${roleIdent}; REVOKE SET ON PARAMETER session_replication_role FROM ${roleIdent};
        REVOKE EXECUTE ON FUNCTION pg_replication_origin_create(text), pg_replication_origin_session_setup(text),
                                   pg_replication_origin_session_reset() FROM ${roleIdent};
        REVOKE pg_create_subscription FROM ${roleIdent}`).catch(() => undefined);
      await query(clusterB().url(), `DROP ROLE IF EXISTS ${roleIdent}`).catch(() => undefined);
    }
  });
});

// A part the target refuses fails the init naming it; the fix and a resume
// complete it without the snapshot (the holder let go when the init
// failed): tables complete on the snapshot are kept, the refused one is
// copied again by PostgreSQL's table sync.
describe('direct init: a part the target refuses', () => {
  let pair: InitPair;

  beforeAll(async () => {
    pair = await createInitPair({ tag: 'init_direct_refused', sourceCluster: clusterA(), targetCluster: clusterB(), rows: 20000 });
    await query(pair.source.url, 'UPDATE public.accounts SET note = NULL WHERE id > 19990');
    await query(pair.target.url, 'ALTER TABLE public.accounts ALTER COLUMN note SET NOT NULL');
    agent = await AgentProcess.start(pair.target.url);
  });
  afterAll(async () => {
    await stopAllAgents();
    await pair?.drop();
  });
  let agent: AgentProcess;

  it('fails naming the part and the reason; fixed and resumed, it ends equal', async () => {
    await query(pair.target.url, `SELECT steep_repl.start_init($1, $2, 'direct', '{"schema_sync": "manual", "split_tables_larger_than": "1MB", "parallel": 1}')`, [
      pair.target.id,
      pair.source.id,
    ]);
    const failed = await waitUntil('failed', async () => {
      const s = await initStatus(pair.target);
      return s.state === 'failed' ? s : undefined;
    });
    expect(failed.progress.error).toMatch(/copying public\.accounts( part \d+\/\d+)? into public\.accounts failed: null value in column "note"/);
    expect(failed.progress.error).toContain(`--resume`);
    expect(await query(pair.target.url, 'SELECT count(*)::int AS n FROM public.accounts WHERE note IS NULL')).toEqual([{ n: 0 }]);
    // one worker, largest parts first: docs' (TOAST) come before accounts'
    const complete = `SELECT table_name FROM steep_repl.init_parts GROUP BY 1 HAVING bool_and(state = 'done') AND bool_and(copies = 1) ORDER BY 1`;
    const keptBefore = await query(pair.target.url, complete);
    expect(keptBefore).toContainEqual({ table_name: 'docs' });
    // the holder lets the snapshot go once it sees the init failed
    const holder = Number((await agent.waitForEvent('init.snapshot_exported', 5000)).holder_pid);
    await waitUntil('the snapshot holder to exit', async () => !processRunning(holder), 10000);

    await query(pair.target.url, 'ALTER TABLE public.accounts ALTER COLUMN note DROP NOT NULL');
    await query(pair.target.url, `SELECT steep_repl.start_init($1, $2, NULL, '{"resume": true}')`, [pair.target.id, pair.source.id]);
    await waitUntil('synchronized', async () => {
      const s = await initStatus(pair.target);
      if (s.state === 'failed') throw new Error(s.progress.error);
      return s.state === 'synchronized';
    });
    await waitCaughtUp(pair);
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
    const parts = await query(pair.target.url, 'SELECT leaf_name, part_no, state, copies FROM steep_repl.init_parts');
    expect(parts.filter((p) => p.leaf_name === 'accounts').every((p) => p.state === 'resynced')).toBe(true);
    expect((await agent.waitForEvent('init.snapshot_lost', 5000)).resync).toContain('public.accounts');
    // complete on the snapshot: kept, not copied again; the rest by table sync
    expect(await query(pair.target.url, complete)).toEqual(keptBefore);
    const others = await query(pair.target.url, `SELECT DISTINCT table_name, state FROM steep_repl.init_parts WHERE table_name <> ALL ($1) ORDER BY 1`, [
      keptBefore.map((k) => k.table_name),
    ]);
    expect(others.every((p) => p.state === 'resynced')).toBe(true);
  });
});
