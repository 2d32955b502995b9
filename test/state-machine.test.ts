// The init state machine of SPEC §3, enforced in the database: every legal
// transition is audited and announced once, every other pair of states is
// refused with SR003 and changes nothing, through transition() and raw UPDATE.
import { Client } from 'pg';
import { clusterA, createNodeDatabase, dropDatabase, query } from './support/clusters';
import { ChannelRecorder, pgError } from './support/notifications';
import { waitUntil } from './support/wait';

const states = ['uninitialized', 'preparing', 'copying', 'catching_up', 'synchronized', 'diverged', 'reinitializing', 'failed'];

const legal: Record<string, string[]> = {
  uninitialized: ['preparing'],
  preparing: ['copying', 'catching_up', 'failed', 'uninitialized'],
  copying: ['catching_up', 'failed', 'uninitialized'],
  catching_up: ['synchronized', 'diverged', 'failed', 'uninitialized'],
  synchronized: ['diverged', 'reinitializing', 'uninitialized'],
  diverged: ['synchronized', 'reinitializing', 'uninitialized'],
  reinitializing: ['copying', 'catching_up', 'synchronized', 'diverged', 'failed', 'uninitialized'],
  failed: ['preparing', 'uninitialized'],
};

const legalPairs = states.flatMap((from) => legal[from].map((to) => [from, to] as const));
const illegalPairs = states.flatMap((from) => states.filter((to) => !legal[from].includes(to)).map((to) => [from, to] as const));

// Shortest legal walk from uninitialized to every state.
const pathTo: Record<string, string[]> = { uninitialized: [] };
for (const queue = ['uninitialized']; queue.length; ) {
  const from = queue.shift()!;
  for (const to of legal[from]) {
    if (!(to in pathTo)) {
      pathTo[to] = [...pathTo[from], to];
      queue.push(to);
    }
  }
}

const oddIds = ['Node "B" with spaces', "o'Reilly's node", 'UPPER lower', 'nœud-ü-日本', 'select', 'a; DROP TABLE x --'];
const sourceId = 'Source "A"';

describe('init state machine', () => {
  let db: { name: string; url: string };
  let sql: Client;
  let recorder: ChannelRecorder;
  let caseNumber = 0;

  beforeAll(async () => {
    db = await createNodeDatabase(clusterA(), 'state_machine');
    sql = new Client({ connectionString: db.url });
    await sql.connect();
    recorder = await ChannelRecorder.listen(db.url, ['steep_repl_state', 'steep_repl_events']);
  });

  afterAll(async () => {
    await sql?.end();
    await recorder?.close();
    if (db) await dropDatabase(clusterA(), db.name);
  });

  // A fresh node (odd id, with a registered source) walked to `state`; the
  // recorder is emptied. Returns the node id and the last audit id.
  async function nodeIn(state: string): Promise<{ id: string; lastAudit: number }> {
    const id = oddIds[caseNumber++ % oddIds.length];
    const lit = (v: string) => sql.escapeLiteral(v);
    await sql.query(
      [
        'DELETE FROM steep_repl.nodes',
        `INSERT INTO steep_repl.nodes (node_id, node_name, host, dbname) VALUES (${lit(sourceId)}, 'a', 'h', 'd')`,
        `INSERT INTO steep_repl.nodes (node_id, node_name, host, dbname, init_source_node) VALUES (${lit(id)}, 'n', 'h', 'd', ${lit(sourceId)})`,
        ...pathTo[state].map((s) => `SELECT steep_repl.transition(${lit(id)}, ${lit(s)})`),
      ].join(';'),
    );
    await recorder.fence(sql);
    recorder.take();
    return { id, lastAudit: await lastAuditId() };
  }

  async function lastAuditId(): Promise<number> {
    return Number((await sql.query('SELECT coalesce(max(audit_id), 0) AS id FROM steep_repl.audit_log')).rows[0].id);
  }

  async function stateOf(id: string): Promise<string> {
    return (await sql.query('SELECT init_state FROM steep_repl.nodes WHERE node_id = $1', [id])).rows[0].init_state;
  }

  it('declares exactly the transitions of the spec', async () => {
    const rows = (await sql.query('SELECT from_state, to_state FROM steep_repl.init_transitions')).rows;
    const declared = rows.map((r) => `${r.from_state} -> ${r.to_state}`).sort();
    expect(declared).toEqual(legalPairs.map(([f, t]) => `${f} -> ${t}`).sort());
    const declaredStates = (await sql.query('SELECT state FROM steep_repl.init_states')).rows.map((r) => r.state);
    expect(declaredStates.sort()).toEqual([...states].sort());
    expect(Object.keys(pathTo).sort()).toEqual([...states].sort());
  });

  describe.each([
    ['transition()', (id: string, to: string) => sql.query('SELECT steep_repl.transition($1, $2, $3)', [id, to, { reason: `to ${to}` }])],
    ['raw UPDATE', (id: string, to: string) => sql.query('UPDATE steep_repl.nodes SET init_state = $2 WHERE node_id = $1', [id, to])],
  ])('through %s', (how, move) => {
    it.each(legalPairs)('allows %s -> %s with one audit row and one NOTIFY', async (from, to) => {
      const { id, lastAudit } = await nodeIn(from);
      await move(id, to);
      await recorder.fence(sql);
      expect(await stateOf(id)).toBe(to);

      const audit = (await sql.query('SELECT * FROM steep_repl.audit_log WHERE audit_id > $1', [lastAudit])).rows;
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ event: 'init.state_change', node_id: id, from_state: from, to_state: to });
      expect(audit[0].details.source_node).toBe(sourceId);

      const notes = recorder.take();
      expect(notes).toEqual([
        {
          channel: 'steep_repl_state',
          payload: {
            node_id: id,
            from,
            to,
            source_node: sourceId,
            audit_id: Number(audit[0].audit_id),
            at: expect.any(String),
            reason: how === 'transition()' ? `to ${to}` : null,
          },
        },
      ]);
      expect(new Date(notes[0].payload.at).getTime()).toBe(audit[0].occurred_at.getTime());
    });

    it.each(illegalPairs)('refuses %s -> %s with SR003 and changes nothing', async (from, to) => {
      const { id, lastAudit } = await nodeIn(from);
      const err = await pgError(move(id, to));
      expect(err.code).toBe('SR003');
      expect(err.message).toContain(`${from} -> ${to}`);
      expect(err.message).toContain(sql.escapeIdentifier(id));
      expect(err.hint).toBe(`from ${from} a node may go to: ${[...legal[from]].sort().join(', ')}`);
      await recorder.fence(sql);
      expect(await stateOf(id)).toBe(from);
      expect(await lastAuditId()).toBe(lastAudit);
      expect(recorder.take()).toEqual([]);
    });
  });

  it('refuses to insert a node in any state but uninitialized', async () => {
    const { lastAudit } = await nodeIn('uninitialized');
    for (const state of states.filter((s) => s !== 'uninitialized')) {
      const err = await pgError(
        sql.query("INSERT INTO steep_repl.nodes (node_id, node_name, host, dbname, init_state) VALUES ('Ins ''x''', 'n', 'h', 'd', $1)", [state]),
      );
      expect(err.code).toBe('SR003');
      expect(err.message).toContain(state);
    }
    await recorder.fence(sql);
    expect((await sql.query("SELECT count(*)::int AS n FROM steep_repl.nodes WHERE node_id = 'Ins ''x'''")).rows[0].n).toBe(0);
    expect(await lastAuditId()).toBe(lastAudit);
    expect(recorder.take()).toEqual([]);
  });

  it('refuses an unknown state with SR004 (transition) or SR003 (raw UPDATE), changing nothing', async () => {
    const { id, lastAudit } = await nodeIn('preparing');
    for (const bad of ['Preparing', 'done', '', null]) {
      const err = await pgError(sql.query('SELECT steep_repl.transition($1, $2)', [id, bad]));
      expect(err.code).toBe('SR004');
      expect(err.message).toMatch(/^unknown init_state /);
      expect(err.hint).toContain('uninitialized');
    }
    const raw = await pgError(sql.query("UPDATE steep_repl.nodes SET init_state = 'done' WHERE node_id = $1", [id]));
    expect(raw.code).toBe('SR003');
    await recorder.fence(sql);
    expect(await stateOf(id)).toBe('preparing');
    expect(await lastAuditId()).toBe(lastAudit);
    expect(recorder.take()).toEqual([]);
  });

  it('refuses an unknown node with SR001 naming the registered ones', async () => {
    const { id, lastAudit } = await nodeIn('uninitialized');
    for (const bad of ['nobody', id.toLowerCase() === id ? id.toUpperCase() : id.toLowerCase(), `${id} `]) {
      const err = await pgError(sql.query('SELECT steep_repl.transition($1, $2)', [bad, 'preparing']));
      expect(err.code).toBe('SR001');
      expect(err.message).toContain('unknown node');
      expect(err.hint).toContain(sql.escapeIdentifier(id));
    }
    const nullNode = await pgError(sql.query('SELECT steep_repl.transition(NULL, $1)', ['preparing']));
    expect(nullNode.code).toBe('SR001');
    await recorder.fence(sql);
    expect(await stateOf(id)).toBe('uninitialized');
    expect(await lastAuditId()).toBe(lastAudit);
    expect(recorder.take()).toEqual([]);
  });

  it('stamps init_started_at on preparing and init_completed_at on synchronized', async () => {
    const { id } = await nodeIn('uninitialized');
    const times = async () =>
      (await sql.query('SELECT init_started_at AS s, init_completed_at AS c, now() AS now FROM steep_repl.nodes WHERE node_id = $1', [id])).rows[0];
    expect(await times()).toMatchObject({ s: null, c: null });

    await sql.query('SELECT steep_repl.transition($1, $2)', [id, 'preparing']);
    const prepared = await times();
    expect(prepared.s).toBeInstanceOf(Date);
    expect(prepared.c).toBeNull();

    await sql.query("SELECT steep_repl.transition($1, 'catching_up'), steep_repl.transition($1, 'synchronized')", [id]);
    const synced = await times();
    expect(synced.s).toEqual(prepared.s);
    expect(synced.c).toBeInstanceOf(Date);
    expect(synced.c.getTime()).toBeGreaterThanOrEqual(synced.s.getTime());

    await sql.query("SELECT steep_repl.transition($1, 'uninitialized')", [id]);
    expect((await times()).c).toBeNull();

    // a retry after failure starts the clock again
    await sql.query("SELECT steep_repl.transition($1, 'preparing')", [id]);
    await sql.query("SELECT steep_repl.transition($1, 'failed')", [id]);
    // as text: PostgreSQL keeps microseconds, a JS Date only milliseconds (two transactions can share one)
    const [{ failed_at: failedAt }] = (
      await sql.query('SELECT init_started_at::text AS failed_at FROM steep_repl.nodes WHERE node_id = $1', [id])
    ).rows;
    await sql.query("SELECT steep_repl.transition($1, 'preparing')", [id]);
    const retried = await times();
    const [{ later }] = (
      await sql.query('SELECT init_started_at > $2::timestamptz AS later FROM steep_repl.nodes WHERE node_id = $1', [id, failedAt])
    ).rows;
    expect(later).toBe(true);
    expect(retried.c).toBeNull();
  });

  it('never lets a node be its own initialization source', async () => {
    const { id, lastAudit } = await nodeIn('uninitialized');
    const err = await pgError(sql.query('UPDATE steep_repl.nodes SET init_source_node = node_id WHERE node_id = $1', [id]));
    expect(err.code).toBe('23514');
    expect((await sql.query('SELECT init_source_node FROM steep_repl.nodes WHERE node_id = $1', [id])).rows[0].init_source_node).toBe(sourceId);
    expect(await lastAuditId()).toBe(lastAudit);
  });

  it('removes a source node whose finished initializations left progress rows', async () => {
    const { id } = await nodeIn('synchronized');
    await sql.query(
      "INSERT INTO steep_repl.init_progress (node_id, source_node_id, phase, overall_percent) VALUES ($1, $2, 'done', 100)",
      [id, sourceId],
    );
    await sql.query("SELECT steep_repl.transition($1, 'uninitialized')", [id]);
    await sql.query('SELECT steep_repl.remove_node($1)', [sourceId]);
    expect((await sql.query('SELECT init_source_node FROM steep_repl.nodes WHERE node_id = $1', [id])).rows).toEqual([{ init_source_node: null }]);
    expect((await sql.query('SELECT source_node_id, phase FROM steep_repl.init_progress WHERE node_id = $1', [id])).rows).toEqual([
      { source_node_id: null, phase: 'done' },
    ]);
  });

  it('refuses to remove a node that is the source of an initialization in progress', async () => {
    const { id, lastAudit } = await nodeIn('copying');
    const err = await pgError(sql.query('SELECT steep_repl.remove_node($1)', [sourceId]));
    expect(err.code).toBe('SR006');
    const self = await pgError(sql.query('SELECT steep_repl.remove_node($1)', [id]));
    expect(self.code).toBe('SR006');
    expect(self.message).toContain('copying');
    expect((await sql.query('SELECT count(*)::int AS n FROM steep_repl.nodes')).rows[0].n).toBe(2);
    expect(await lastAuditId()).toBe(lastAudit);
  });

  // Until the client's running statement waits on a lock: the race is on, not
  // merely queued behind a commit that already happened. Read on a connection
  // of its own (a transaction sees one snapshot of pg_stat_activity).
  async function waitForLock(client: Client): Promise<void> {
    const pid = (client as unknown as { processID: number }).processID;
    await waitUntil(
      `backend ${pid} to wait on a lock`,
      async () => (await query(db.url, 'SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1', [pid]))[0]?.wait_event_type === 'Lock',
      10000,
      20,
    );
  }

  it('refuses the loser of two concurrent registrations of one id with SR002', async () => {
    const other = new Client({ connectionString: db.url });
    await other.connect();
    try {
      await sql.query('BEGIN');
      await sql.query("SELECT steep_repl.register_node('raced node', 'h1', 5432, 'd')");
      // The second registration passes the existence check (the first is not
      // committed) and waits on the primary key until the first commits.
      const second = pgError(other.query("SELECT steep_repl.register_node('raced node', 'h2', 5432, 'd')"));
      await waitForLock(other);
      await sql.query('COMMIT');
      const err = await second;
      expect(err.code).toBe('SR002');
      expect(err.message).toContain('"raced node"');
    } finally {
      await sql.query('ROLLBACK').catch(() => undefined);
      await other.end();
    }
    expect((await sql.query("SELECT host FROM steep_repl.nodes WHERE node_id = 'raced node'")).rows).toEqual([{ host: 'h1' }]);
    await sql.query("DELETE FROM steep_repl.nodes WHERE node_id = 'raced node'");
  });

  it('refuses the second of two concurrent starts', async () => {
    const { id, lastAudit } = await nodeIn('uninitialized');
    const other = new Client({ connectionString: db.url });
    await other.connect();
    try {
      await sql.query('BEGIN');
      await sql.query("SELECT steep_repl.transition($1, 'preparing')", [id]);
      const second = pgError(other.query("SELECT steep_repl.transition($1, 'preparing')", [id]));
      // The second start waits on the node row the first has locked.
      await waitForLock(other);
      await sql.query('COMMIT');
      const err = await second;
      expect(err.code).toBe('SR003');
      expect(err.message).toContain('preparing -> preparing');
    } finally {
      await sql.query('ROLLBACK').catch(() => undefined);
      await other.end();
    }
    await recorder.fence(sql);
    expect(recorder.take().filter((n) => n.channel === 'steep_repl_state')).toHaveLength(1);
    expect(await stateOf(id)).toBe('preparing');
    expect((await sql.query('SELECT count(*)::int AS n FROM steep_repl.audit_log WHERE audit_id > $1', [lastAudit])).rows[0].n).toBe(1);
  });
});
