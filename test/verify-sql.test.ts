// The verify's SQL alone, as psql sees it (no agent): start_verify's
// refusals change nothing (unknown node, peer, table or schema, an
// ambiguous name, a wrong state, no subscription from that peer, a verify
// already queued, bad options); names with spaces, quotes, capitals and
// unicode resolve; verify_status / latest_verify / cancel_verify; and
// finish_verify's bookkeeping: divergence, the node's state and the events.
import { clusterA, clusterB, query, refusal } from './support/clusters';
import { createInitPair, InitPair } from './support/init-pair';
import { registerIn } from './support/node-pair';
import { replicatePair } from './support/verify-pair';

jest.setTimeout(60000);

// What start_verify may change (heartbeat fields left out).
async function stateOf(url: string): Promise<unknown> {
  const [row] = await query(
    url,
    `SELECT (SELECT coalesce(jsonb_agg(to_jsonb(n) - 'last_seen' - 'status' ORDER BY node_id), '[]') FROM steep_repl.nodes n) AS nodes,
            (SELECT coalesce(jsonb_agg(to_jsonb(r) - 'updated_at' ORDER BY verify_id), '[]') FROM steep_repl.verify_runs r) AS runs,
            (SELECT count(*)::int FROM steep_repl.verify_tables) AS tables,
            (SELECT count(*)::int FROM steep_repl.node_divergence) AS divergence,
            (SELECT coalesce(jsonb_agg(key ORDER BY key), '[]') FROM graphile_worker._private_jobs) AS jobs,
            (SELECT count(*)::int FROM steep_repl.audit_log) AS audit_rows`,
  );
  return row;
}

const lastEvent = async (url: string, event: string): Promise<any> =>
  (await query(url, 'SELECT node_id, from_state, to_state, details FROM steep_repl.audit_log WHERE event = $1 ORDER BY audit_id DESC LIMIT 1', [event]))[0];

describe('verify SQL', () => {
  let pair: InitPair;
  let url: string;
  let node: string;
  let peer: string;

  beforeAll(async () => {
    pair = await createInitPair({
      tag: 'verify_sql',
      sourceCluster: clusterA(),
      targetCluster: clusterB(),
      sourceId: 'Vérif "Src" A',
      targetId: 'verif Tgt ü',
      rows: 1000,
    });
    // a second table named accounts, in a schema of its own: "accounts" alone is ambiguous
    for (const db of [pair.source, pair.target]) {
      await query(db.url, 'CREATE SCHEMA "Other Schema"; CREATE TABLE "Other Schema".accounts (id int PRIMARY KEY)');
    }
    await query(pair.target.url, 'CREATE SCHEMA "empty one"; CREATE TABLE "empty one".local_only (id int PRIMARY KEY)');
    await replicatePair(pair);
    ({ url } = pair.target);
    node = pair.target.id;
    peer = pair.source.id;
  });
  afterAll(async () => {
    await pair?.drop();
  });

  const start = (options: unknown = {}, peerId: string | null = null, nodeId = node) =>
    query(url, 'SELECT steep_repl.start_verify($1, $2, $3) AS r', [nodeId, peerId, options]).then((r) => r[0].r);

  it('refuses bad input with a clear SQLSTATE, changing nothing', async () => {
    await registerIn(pair.target, { ...pair.source, id: 'third "node"', name: 'nowhere' });
    const before = await stateOf(url);
    const cases: Array<[unknown[], string, RegExp, RegExp?]> = [
      [['no such node', null, {}], 'SR001', /unknown node 'no such node'/],
      [[node, 'no such peer', {}], 'SR001', /unknown node 'no such peer'/],
      [[peer, node, {}], 'SR004', /start_verify runs on the database of node "Vérif ""Src"" A"; this database is node "verif Tgt ü"/],
      [[node, node, {}], 'SR004', /cannot be compared with itself/],
      [[node, 'third "node"', {}], 'SR004', /node "verif Tgt ü" does not replicate from node "third ""node""" \(no subscription steep_/, /compares a node with the peer it replicates from/],
      [[node, null, { tables: ['public.nope'] }], 'SR004', /table 'public.nope' is not among the tables node "verif Tgt ü" receives from node "Vérif ""Src"" A"/, /public\.accounts/],
      [[node, null, { tables: ['"empty one".local_only'] }], 'SR004', /is not among the tables/],
      [[node, null, { tables: ['accounts'] }], 'SR004', /table name 'accounts' is ambiguous: "Other Schema"\.accounts, public\.accounts/, /qualify it/],
      [[node, null, { tables: ['a.b.c'] }], 'SR004', /invalid table name 'a\.b\.c'/],
      [[node, null, { tables: [] }], 'SR004', /tables must be a non-empty list/],
      [[node, null, { tables: 'public.accounts' }], 'SR004', /tables must be a non-empty list/],
      [[node, null, { tables: ['public.docs'], schema: 'public' }], 'SR004', /name tables or a schema, not both/],
      [[node, null, { schema: 'nope' }], 'SR004', /unknown schema 'nope'/],
      [[node, null, { schema: 'empty one' }], 'SR004', /schema "empty one" has none of the tables node "verif Tgt ü" receives/],
      [[node, null, { key_limit: 0 }], 'SR004', /key_limit must be a whole number from 1 to 1000000, got 0/],
      [[node, null, { key_limit: 1000001 }], 'SR004', /key_limit/],
      [[node, null, { key_limit: 1.5 }], 'SR004', /key_limit/],
      [[node, null, { key_limit: '10' }], 'SR004', /key_limit/],
      [[node, null, { reason: 'curiosity' }], 'SR004', /option reason must be verify or reinit/],
      [[node, null, { colour: 'blue' }], 'SR004', /unknown verify option 'colour'/],
      [[node, null, { reason: 'reinit' }], 'SR003', /node "verif Tgt ü" is synchronized: a reinit's verify runs while it is reinitializing/],
    ];
    for (const [params, code, message, hint] of cases) {
      const err = await refusal(url, 'SELECT steep_repl.start_verify($1, $2, $3)', params);
      expect({ params, code: err.code, message: err.message }).toEqual({ params, code, message: expect.stringMatching(message) });
      if (hint) expect(err.hint).toMatch(hint);
    }
    // the source is uninitialized in its own registry
    const uninitialized = await refusal(pair.source.url, 'SELECT steep_repl.start_verify($1, $2)', [peer, node]);
    expect(uninitialized.code).toBe('SR003');
    expect(uninitialized.message).toBe(`node "Vérif ""Src"" A" is uninitialized: only a synchronized or diverged node is verified`);
    const noSource = await refusal(pair.source.url, 'SELECT steep_repl.start_verify($1)', [peer]);
    expect(noSource.code).toBe('SR004');
    expect(noSource.message).toMatch(/has no source to compare with/);
    expect(await stateOf(url)).toEqual(before);
    await query(url, 'SELECT steep_repl.remove_node($1)', ['third "node"']);
  });

  it('resolves names with spaces, quotes, capitals and unicode, quoted or as written, and a schema', async () => {
    const odd = '"Sales ünit"."Order ""Items"" é"';
    const resolve = async (options: Record<string, unknown>) =>
      (await query(url, `SELECT coalesce(jsonb_agg(label ORDER BY label), '[]') AS l FROM steep_repl.scope_tables($1, $2)`, [pair.replicationName, options]))[0].l;
    expect(await resolve({ tables: [odd] })).toEqual([odd]);
    expect(await resolve({ tables: ['Sales ünit.Order "Items" é'] })).toEqual([odd]);
    expect(await resolve({ tables: ['Order "Items" é'] })).toEqual([odd]);
    expect(await resolve({ tables: ['"Order ""Items"" é"', 'docs', 'public.docs', 'PUBLIC.DOCS'] })).toEqual([odd, 'public.docs']);
    expect(await resolve({ schema: 'Sales ünit' })).toEqual([odd]);
    expect(await resolve({ schema: '"Sales ünit"' })).toEqual([odd]);
    expect(await resolve({ schema: 'Other Schema' })).toEqual(['"Other Schema".accounts']);
    expect(await resolve({})).toEqual(['"Other Schema".accounts', odd, 'public.accounts', 'public.docs', 'public.events', 'public.slow']);
    expect(await resolve({ full: true })).toEqual(await resolve({}));
  });

  it('starts a verify (a job, the run and its tables, verify.started), refuses a second one, and cancels one that never ran', async () => {
    expect(await query(url, 'SELECT steep_repl.latest_verify($1) AS r', [node])).toEqual([{ r: null }]);
    const started = await start({ tables: ['"Sales ünit"."Order ""Items"" é"', 'public.accounts'], key_limit: 50 });
    expect(started).toEqual({
      verify_id: expect.any(Number),
      node_id: node,
      peer_node_id: peer,
      reason: 'verify',
      key_limit: 50,
      tables: ['"Sales ünit"."Order ""Items"" é"', 'public.accounts'],
      job_id: expect.any(Number),
      follow: {
        status: `SELECT steep_repl.verify_status(${started.verify_id})`,
        channels: ['steep_repl_progress', 'steep_repl_events', 'steep_repl_state'],
        cancel: `SELECT steep_repl.cancel_verify('verif Tgt ü')`,
      },
    });
    const [job] = await query(url, 'SELECT t.identifier AS task_identifier, j.payload, j.key FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id');
    expect(job).toEqual({ task_identifier: 'verify_node', payload: { verify_id: started.verify_id, node_id: node }, key: `verify:${node}` });
    expect((await lastEvent(url, 'verify.started')).details).toMatchObject({ verify_id: started.verify_id, peer_node: peer, tables_total: 2 });

    const status = (await query(url, 'SELECT steep_repl.verify_status($1) AS r', [started.verify_id]))[0].r;
    expect(status).toMatchObject({ state: 'queued', node_id: node, peer_node_id: peer, tables_total: 2, node_state: 'synchronized', options: { key_limit: 50 } });
    expect(status.tables.map((t: any) => [t.label, t.status, t.differences])).toEqual([
      ['"Sales ünit"."Order ""Items"" é"', 'pending', []],
      ['public.accounts', 'pending', []],
    ]);
    expect((await query(url, 'SELECT steep_repl.latest_verify($1) AS r', [node]))[0].r.verify_id).toBe(started.verify_id);

    const before = await stateOf(url);
    const again = await refusal(url, 'SELECT steep_repl.start_verify($1)', [node]);
    expect(again.code).toBe('SR006');
    expect(again.message).toBe(`a verify of node "verif Tgt ü" is already queued or running (verify ${started.verify_id})`);
    expect(again.hint).toMatch(/cancel_verify/);
    expect(await stateOf(url)).toEqual(before);

    const cancelled = (await query(url, 'SELECT steep_repl.cancel_verify($1) AS r', [node]))[0].r;
    expect(cancelled).toEqual({ verify_id: started.verify_id, node_id: node, cancelled: true, state: 'cancelled' });
    expect(await query(url, 'SELECT count(*)::int AS n FROM graphile_worker._private_jobs')).toEqual([{ n: 0 }]);
    expect((await lastEvent(url, 'verify.cancelled')).details).toMatchObject({ verify_id: started.verify_id, reason: 'cancelled before the job started', state: 'synchronized' });
    expect((await query(url, 'SELECT steep_repl.verify_status($1) AS r', [started.verify_id]))[0].r).toMatchObject({ state: 'cancelled', phase: 'done' });
    const none = await refusal(url, 'SELECT steep_repl.cancel_verify($1)', [node]);
    expect(none.code).toBe('SR003');
    expect(none.message).toBe('node "verif Tgt ü" has no verify queued or running');
    expect(none.hint).toBe(`its last verify, ${started.verify_id}, is cancelled`);
    const unknown = await refusal(url, 'SELECT steep_repl.verify_status($1)', [999999]);
    expect(unknown.code).toBe('SR004');
    expect(unknown.message).toBe('unknown verify 999999');
  });

  it('finish_verify: differences make the node diverged with its tables; a later equal verify brings it back', async () => {
    // the job's steps by hand: claim, one table differs, the other equal
    const first = await start({ tables: ['public.accounts', 'public.docs'] });
    await query(url, "DELETE FROM graphile_worker._private_jobs");
    const claimed = (await query(url, 'SELECT steep_repl.claim_verify($1) AS r', [first.verify_id]))[0].r;
    expect(claimed).toMatchObject({ state: 'running', subscription: pair.replicationName, key_limit: 1000 });
    const result = (status: string, counts: Record<string, number> = {}) => ({
      status, compared: 'key_ranges', ranges_total: 1, ranges_done: 1, ranges_differing: status === 'equal' ? 0 : 1, rows_compared: 10,
      rows_missing: 0, rows_extra: 0, rows_different: 0, rows_unsettled: 0, ...counts,
    });
    await query(url, 'SELECT steep_repl.record_verify_table($1, $2, $3, $4, $5)', [first.verify_id, 'public', 'accounts',
      result('differs', { rows_missing: 1, rows_different: 1 }), JSON.stringify([{ key: { id: 7 }, kind: 'missing' }, { key: { id: 9 }, kind: 'different' }])]);
    await query(url, 'SELECT steep_repl.record_verify_table($1, $2, $3, $4)', [first.verify_id, 'public', 'docs', result('equal')]);
    const bad = await refusal(url, 'SELECT steep_repl.finish_verify($1, $2, $3)', [first.verify_id, 'maybe', {}]);
    expect(bad.code).toBe('SR004');
    const summary = (await query(url, 'SELECT steep_repl.finish_verify($1, $2, $3) AS r', [first.verify_id, 'differs', {}]))[0].r;
    expect(summary).toMatchObject({ outcome: 'differs', state: 'diverged', tables_differing: ['public.accounts'], rows_missing: 1, rows_different: 1 });
    expect(await query(url, 'SELECT node_id, schema_name, table_name, peer_node_id, verify_id::int, rows_missing::int, rows_different::int FROM steep_repl.node_divergence')).toEqual([
      { node_id: node, schema_name: 'public', table_name: 'accounts', peer_node_id: peer, verify_id: first.verify_id, rows_missing: 1, rows_different: 1 },
    ]);
    const change = await lastEvent(url, 'init.state_change');
    expect(change).toMatchObject({ node_id: node, from_state: 'synchronized', to_state: 'diverged' });
    expect(change.details).toMatchObject({ verify_id: first.verify_id, tables: ['public.accounts'] });
    expect((await lastEvent(url, 'verify.completed')).details).toMatchObject({ verify_id: first.verify_id, state: 'diverged', tables_differing: ['public.accounts'] });
    const status = (await query(url, 'SELECT steep_repl.verify_status($1) AS r', [first.verify_id]))[0].r;
    expect(status.tables[0]).toMatchObject({ label: 'public.accounts', status: 'differs', sample_keys: [{ id: 7 }, { id: 9 }],
      differences: [{ key: { id: 9 }, kind: 'different' }, { key: { id: 7 }, kind: 'missing' }] });
    const ended = await refusal(url, 'SELECT steep_repl.finish_verify($1, $2)', [first.verify_id, 'equal']);
    expect(ended.code).toBe('SR003');
    expect(ended.message).toBe(`verify ${first.verify_id} has ended already (differs)`);

    // a diverged node is verified again; docs alone equal keeps it diverged, accounts equal ends it
    const docs = await start({ tables: ['public.docs'] });
    await query(url, "DELETE FROM graphile_worker._private_jobs");
    await query(url, 'SELECT steep_repl.claim_verify($1)', [docs.verify_id]);
    await query(url, 'SELECT steep_repl.record_verify_table($1, $2, $3, $4)', [docs.verify_id, 'public', 'docs', result('equal')]);
    expect((await query(url, 'SELECT steep_repl.finish_verify($1, $2) AS r', [docs.verify_id, 'equal']))[0].r.state).toBe('diverged');
    const accounts = await start({ tables: ['public.accounts'] });
    await query(url, "DELETE FROM graphile_worker._private_jobs");
    await query(url, 'SELECT steep_repl.claim_verify($1)', [accounts.verify_id]);
    await query(url, 'SELECT steep_repl.record_verify_table($1, $2, $3, $4)', [accounts.verify_id, 'public', 'accounts', result('equal')]);
    expect((await query(url, 'SELECT steep_repl.finish_verify($1, $2) AS r', [accounts.verify_id, 'equal']))[0].r.state).toBe('synchronized');
    expect(await query(url, 'SELECT count(*)::int AS n FROM steep_repl.node_divergence')).toEqual([{ n: 0 }]);
    expect(await lastEvent(url, 'init.state_change')).toMatchObject({ from_state: 'diverged', to_state: 'synchronized', details: { reason: 'a later verify found no difference' } });

    // failed: the message and hint kept, nothing else changes
    const failing = await start({});
    await query(url, "DELETE FROM graphile_worker._private_jobs");
    await query(url, 'SELECT steep_repl.claim_verify($1)', [failing.verify_id]);
    await query(url, 'SELECT steep_repl.finish_verify($1, $2, $3)', [failing.verify_id, 'failed', { error: 'the peer went away', hint: 'try again' }]);
    expect((await lastEvent(url, 'verify.failed')).details).toMatchObject({ verify_id: failing.verify_id, error: 'the peer went away', hint: 'try again', state: 'synchronized' });
    expect((await query(url, 'SELECT steep_repl.latest_verify($1) AS r', [node]))[0].r).toMatchObject({ state: 'failed', error: 'the peer went away', hint: 'try again' });
    // a run whose job vanished does not block the next one
    const orphan = await start({});
    await query(url, "DELETE FROM graphile_worker._private_jobs");
    const next = await start({});
    expect((await query(url, 'SELECT steep_repl.verify_status($1) AS r', [orphan.verify_id]))[0].r).toMatchObject({ state: 'failed', error: 'its job ended without recording a result' });
    await query(url, 'SELECT steep_repl.cancel_verify($1)', [node]);
    expect((await query(url, 'SELECT steep_repl.verify_status($1) AS r', [next.verify_id]))[0].r.state).toBe('cancelled');
  });
});
