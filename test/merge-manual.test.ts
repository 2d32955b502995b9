// The manual strategy on real servers: a record run writes every conflict
// (1000 in the items table, 40 in the others) to steep_repl.merge_conflicts
// with both rows as JSON and their hashes, and changes nothing on the
// nodes; --apply is refused with the count while any is unresolved; a
// resolution is checked however it is written (a plain UPDATE too); the
// merge then applies a, b and rows of the DBA's own exactly as resolved.
// A conflict that changed after it was recorded (or a new one) stops the
// merge before anything is written; recorded again, it merges.
import { DatabaseError } from 'pg';
import { query } from './support/clusters';
import {
  canonical,
  cloneTables,
  Decide,
  differences,
  expectation,
  keyValues,
  merged,
  MergePair,
  normalize,
  pairsOf,
  preferB,
  Row,
  runTables,
  TableSpec,
} from './support/merge-pair';

jest.setTimeout(120000);

describe('merge --strategy manual', () => {
  const pairs = pairsOf('merge_manual');
  afterEach(() => pairs.dropAll());

  const conflictsOf = (pair: MergePair, mergeId: number) =>
    query(
      pair.a.url,
      `SELECT format('%I.%I', schema_name, table_name) AS label, key, kind, row_a, row_b, hash_a, hash_b, resolution, resolved_row
       FROM steep_repl.merge_conflicts WHERE merge_id = $1 ORDER BY 1, key`,
      [mergeId],
    );
  const unresolved = async (pair: MergePair, mergeId: number) =>
    (await query(pair.a.url, 'SELECT count(*)::int AS n FROM steep_repl.merge_conflicts WHERE merge_id = $1 AND resolution IS NULL', [mergeId]))[0].n;
  const fails = (p: Promise<unknown>) => p.then(
    () => {
      throw new Error('not refused');
    },
    (err) => {
      if (!(err instanceof DatabaseError)) throw err;
      return err;
    },
  );
  const resolve = async (pair: MergePair, mergeId: number, resolution: string, table: string | null = null, key: unknown = null, row: unknown = null) =>
    (await query(pair.a.url, 'SELECT steep_repl.resolve_merge_conflicts($1, $2, $3, $4, $5) AS n', [mergeId, resolution, table, key, row]))[0].n;
  const record = async (pair: MergePair) => {
    const started = await pair.startMerge({ strategy: 'manual' });
    expect(started).toMatchObject({ mode: 'record', strategy: 'manual' });
    const status = await pair.waitEnd(started.merge_id);
    expect({ state: status.state, error: status.error }).toEqual({ state: 'resolving', error: null });
    return status;
  };

  it('record: every conflict with both rows; --apply refused with the count until all are resolved; a, b and rows applied exactly', async () => {
    const pair = await pairs.create();
    await pair.startAgent();
    const before = await pair.snapshot();
    const status = await record(pair);
    const rec = status.merge_id;
    const want = expectation(pair.specs, pair.seeded.a, pair.seeded.b);
    const total = Object.values(want).reduce((n, e) => n + e.conflicting, 0);
    expect(want[pair.labels[0]].conflicting).toBe(1000);
    expect(status.conflicts).toMatchObject({ total, unresolved: total, by_kind: { conflict: total } });

    // each conflict: its key, A's row and B's row as the nodes hold them, their hashes
    const rows = await conflictsOf(pair, rec);
    expect(rows.length).toBe(total);
    const bySpec = new Map(pair.specs.map((spec) => [spec.label, spec]));
    const problems: unknown[] = [];
    for (const c of rows) {
      const spec = bySpec.get(c.label)!;
      const key = JSON.stringify(keyValues(spec, c.key));
      const a = pair.seeded.a.get(spec.label)!.get(key);
      const b = pair.seeded.b.get(spec.label)!.get(key);
      const ok =
        a && b && c.kind === 'conflict' && c.resolution === null &&
        canonical(normalize(spec, c.row_a)) === canonical(a) && canonical(normalize(spec, c.row_b)) === canonical(b) &&
        typeof c.hash_a === 'string' && typeof c.hash_b === 'string' && c.hash_a !== c.hash_b;
      if (!ok && problems.length < 3) problems.push({ recorded: c, a, b });
    }
    expect(problems).toEqual([]);
    const perTable = Object.fromEntries(pair.specs.map((spec) => [spec.label, rows.filter((r) => r.label === spec.label).length]));
    expect(perTable).toEqual(Object.fromEntries(pair.specs.map((spec) => [spec.label, want[spec.label].conflicting])));
    expect(await pair.snapshot()).toEqual(before);

    // --apply while every conflict is unresolved
    const refused = await pair.refusedMerge({ strategy: 'manual', apply: true });
    expect(refused.code).toBe('SR004');
    expect(refused.message).toContain(`${total} conflicts of merge ${rec} are unresolved`);
    expect(refused.hint).toContain('UPDATE steep_repl.merge_conflicts');

    // resolutions are checked however they are written
    const items = pair.specs[0];
    const first = `{"id": ${2001}}`;
    const bad = [
      query(pair.a.url, "UPDATE steep_repl.merge_conflicts SET resolution = 'c' WHERE merge_id = $1 AND key = $2", [rec, first]),
      query(pair.a.url, "UPDATE steep_repl.merge_conflicts SET resolution = 'row' WHERE merge_id = $1 AND key = $2", [rec, first]),
      // the row's key is another conflict's
      query(pair.a.url, "UPDATE steep_repl.merge_conflicts SET resolution = 'row', resolved_row = $3 WHERE merge_id = $1 AND key = $2", [
        rec,
        first,
        { id: 2002, v: 'x', n: 1, updated_at: null },
      ]),
      // a column the table lacks
      query(pair.a.url, "UPDATE steep_repl.merge_conflicts SET resolution = 'row', resolved_row = $3 WHERE merge_id = $1 AND key = $2", [
        rec,
        first,
        { id: 2001, v: 'x', colour: 'red' },
      ]),
      // a value the column cannot hold
      query(pair.a.url, "UPDATE steep_repl.merge_conflicts SET resolution = 'row', resolved_row = $3 WHERE merge_id = $1 AND key = $2", [
        rec,
        first,
        { id: 2001, v: 'x', n: 'not a number' },
      ]),
      resolve(pair, rec, 'x'),
      resolve(pair, rec, 'row', items.label, null, { id: 2001, v: 'x' }),
      resolve(pair, rec, 'a', 'public.no_such_table'),
    ];
    for (const [i, p] of bad.entries()) expect({ i, refused: (await fails(p)).message.length > 0 }).toEqual({ i, refused: true });
    expect(await unresolved(pair, rec)).toBe(total);

    // the items table: all b by table, then a for id % 3 = 0 and rows of
    // their own for id % 3 = 2 (plain UPDATEs), one row by the function
    const ownRow = (id: number): Row => ({ id, v: `manual ${id}`, n: 7.5, updated_at: null });
    expect(await resolve(pair, rec, 'b', items.label)).toBe(1000);
    await query(pair.a.url, "UPDATE steep_repl.merge_conflicts SET resolution = 'a' WHERE merge_id = $1 AND table_name = $2 AND (key ->> 'id')::int % 3 = 0", [
      rec,
      items.name,
    ]);
    await query(
      pair.a.url,
      `UPDATE steep_repl.merge_conflicts SET resolution = 'row',
              resolved_row = jsonb_build_object('id', (key ->> 'id')::int, 'v', 'manual ' || (key ->> 'id'), 'n', 7.5, 'updated_at', NULL)
       WHERE merge_id = $1 AND table_name = $2 AND (key ->> 'id')::int % 3 = 2 AND (key ->> 'id')::int <> 2003`,
      [rec, items.name],
    );
    expect(await resolve(pair, rec, 'row', items.label, { id: 2003 }, ownRow(2003))).toBe(1);
    const [resolvedAt] = await query(pair.a.url, 'SELECT count(*)::int AS n FROM steep_repl.merge_conflicts WHERE merge_id = $1 AND resolved_at IS NOT NULL', [rec]);
    expect(resolvedAt.n).toBe(1000);
    // 40 left in the other tables: still refused, with that count
    const rest = total - 1000;
    expect((await pair.refusedMerge({ strategy: 'manual', apply: true })).message).toContain(`${rest} conflicts of merge ${rec} are unresolved`);

    // parent: A; child: B (B's children reference parents only B holds);
    // tags: B, one key a row of its own
    const [parent, child, tags] = [pair.specs[1], pair.specs[2], pair.specs[3]];
    expect(await resolve(pair, rec, 'a', parent.label)).toBe(want[parent.label].conflicting);
    expect(await resolve(pair, rec, 'b', child.label)).toBe(want[child.label].conflicting);
    expect(await resolve(pair, rec, 'b', tags.label)).toBe(want[tags.label].conflicting);
    const tagKey = { Key: 'täg 0205', select: 205 % 7 };
    const tagRow: Row = { ...tagKey, label: 'chosen by hand', updated_at: '2030-01-01T00:00:00+00:00' };
    expect(await resolve(pair, rec, 'row', tags.label, tagKey, tagRow)).toBe(1);
    expect(await unresolved(pair, rec)).toBe(0);
    // deciding wrote nothing on the nodes
    expect(await pair.snapshot()).toEqual(before);

    const decide: Decide = (spec: TableSpec, key: string, a: Row, b: Row) => {
      const values = JSON.parse(key);
      if (spec === items) {
        const id = values[0] as number;
        return id % 3 === 0 ? a : id % 3 === 1 ? b : ownRow(id);
      }
      if (spec === parent) return a;
      if (spec === tags && values[0] === tagKey.Key) return normalize(tags, tagRow);
      return b;
    };
    const started = await pair.startMerge({ strategy: 'manual', apply: true });
    expect(started).toMatchObject({ mode: 'merge', strategy: 'manual' });
    const done = await pair.waitEnd(started.merge_id, 90000);
    expect({ state: done.state, error: done.error, resolutions_of: done.options.resolutions_of }).toEqual({ state: 'merged', error: null, resolutions_of: rec });
    expect(await pair.states()).toEqual({ a: 'synchronized', b: 'synchronized' });
    const expected = merged(pair.specs, pair.seeded.a, pair.seeded.b, decide);
    const now = await pair.read();
    expect(differences(now.a, expected)).toEqual({});
    expect(differences(now.b, expected)).toEqual({});
    const hashes = await pair.hashes();
    expect(hashes.b).toEqual(hashes.a);
    const wins = expectation(pair.specs, pair.seeded.a, pair.seeded.b, decide);
    for (const [label, t] of Object.entries(runTables(done))) {
      expect({ label, won_a: t.conflicts_won_a, won_b: t.conflicts_won_b, to_a: t.rows_to_a, to_b: t.rows_to_b }).toEqual({
        label,
        won_a: wins[label].won_a,
        won_b: wins[label].won_b,
        to_a: wins[label].to_a,
        to_b: wins[label].to_b,
      });
    }
    expect(await pair.replication()).toEqual(pair.merging());
  });

  it('a conflict changed after it was recorded, and a new one: the merge stops before writing; recorded again, it merges', async () => {
    const pair = await pairs.create({ sizes: { shared: 500, conflicts: 100, onlyA: 50, onlyB: 50 } });
    await pair.startAgent();
    const items = pair.specs[0];
    const rec = (await record(pair)).merge_id;
    const total = await resolve(pair, rec, 'a');
    expect(total).toBe(Object.values(expectation(pair.specs, pair.seeded.a, pair.seeded.b)).reduce((n, e) => n + e.conflicting, 0));
    expect(await unresolved(pair, rec)).toBe(0);

    // after the record run: a recorded conflict changes on B, a shared row on A
    await query(pair.b.url, `UPDATE ${items.label} SET v = 'changed after recording' WHERE id = 501`);
    await query(pair.a.url, `UPDATE ${items.label} SET v = 'now a conflict' WHERE id = 1`);
    const a = cloneTables(pair.seeded.a);
    const b = cloneTables(pair.seeded.b);
    a.get(items.label)!.get('[1]')!.v = 'now a conflict';
    b.get(items.label)!.get('[501]')!.v = 'changed after recording';
    const before = await pair.snapshot();

    const started = await pair.startMerge({ strategy: 'manual', apply: true });
    const failed = await pair.waitEnd(started.merge_id);
    expect(failed.state).toBe('failed');
    expect(failed.error).toMatch(new RegExp(`^2 conflicts differ from the ones resolved in merge ${rec}`));
    expect(failed.error).toContain('--strategy manual');
    // nothing written, nothing left behind; both nodes failed, saying what to do
    const after = (await pair.snapshot()) as any;
    const was = before as any;
    for (const side of ['a', 'b'] as const) {
      expect({ side, hashes: after[side].hashes, replication: after[side].replication, sequence: after[side].sequence }).toEqual({
        side,
        hashes: was[side].hashes,
        replication: was[side].replication,
        sequence: was[side].sequence,
      });
    }
    expect(await pair.states()).toEqual({ a: 'failed', b: 'failed' });
    const progress = await pair.progress();
    for (const p of [progress.a, progress.b]) expect(p).toMatchObject({ method: 'merge', phase: 'failed', error: expect.stringMatching(/conflicts differ/) });

    // recorded again (allowed on failed nodes), resolved, merged from failed
    const again = await record(pair);
    expect(again.conflicts.total).toBe(total + 1);
    const changed = (await conflictsOf(pair, again.merge_id)).filter((c) => [1, 501].includes(c.key.id));
    expect(changed.map((c) => [c.key.id, c.row_a.v, c.row_b.v])).toEqual([
      [1, 'now a conflict', 'shared 1'],
      [501, 'a 501', 'changed after recording'],
    ]);
    expect(await resolve(pair, again.merge_id, 'b')).toBe(total + 1);
    const applied = await pair.startMerge({ strategy: 'manual', apply: true });
    const done = await pair.waitEnd(applied.merge_id, 90000);
    expect({ state: done.state, error: done.error, resolutions_of: done.options.resolutions_of }).toEqual({
      state: 'merged',
      error: null,
      resolutions_of: again.merge_id,
    });
    expect(await pair.states()).toEqual({ a: 'synchronized', b: 'synchronized' });
    const expected = merged(pair.specs, a, b, preferB);
    const now = await pair.read();
    expect(differences(now.a, expected)).toEqual({});
    expect(differences(now.b, expected)).toEqual({});
  });
});
