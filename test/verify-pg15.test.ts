// Verify across versions: a PostgreSQL 15 peer and the 18 node it
// replicates to (the upgrade path) hash a row the same way (the canary
// agrees), so equal data verifies equal and a hand-made difference is
// found. Own clusters: one on Debian's PostgreSQL 15 binaries (see
// test/pg15.test.ts).
import { OwnClusters, query, startOwnClusters } from './support/clusters';
import { createInitPair, InitPair, waitCaughtUp } from './support/init-pair';
import { AgentProcess, stopAllAgents } from './support/processes';
import { replicatePair } from './support/verify-pair';
import { waitUntil } from './support/wait';

jest.setTimeout(60000);

const typesSql = `
  CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
  CREATE TABLE public.kinds (id uuid PRIMARY KEY, n numeric, f float8, r real, at timestamptz, d date, i interval, b bytea,
                             j json, jb jsonb, p point, m public.mood, tags text[], money_v money, x xml);
`;
const typesDataSql = `
  INSERT INTO public.kinds
  SELECT md5(g::text)::uuid, g * 1.10, g / 3.0, g / 7.0, '2024-03-01 10:00+02'::timestamptz + g * interval '1 minute', '2024-01-01'::date + g,
         make_interval(days => g, secs => g * 1.5), decode(md5(g::text), 'hex'), json_build_object('g', g), jsonb_build_object('g', g),
         point(g, g / 2.0), (ARRAY['sad', 'ok', 'happy']::public.mood[])[1 + g % 3], ARRAY['t' || g, NULL], g * 1.25, xmlelement(name e, g)
  FROM generate_series(1, 500) g;
`;

describe('verify, PostgreSQL 15 peer and 18 node', () => {
  let own: OwnClusters<'pg15' | 'pg18'>;
  let pair: InitPair;

  beforeAll(async () => {
    own = await startOwnClusters('test-verify-pg15', ['pg15', 'pg18'], { versions: { pg15: 15 } });
    pair = await createInitPair({
      tag: 'verify_pg15',
      sourceCluster: own.clusters.pg15,
      targetCluster: own.clusters.pg18,
      sourceId: 'Fünfzehn "15"',
      targetId: 'achtzehn 18',
      rows: 2000,
    });
    for (const db of [pair.source, pair.target]) await query(db.url, typesSql);
    await query(pair.source.url, typesDataSql);
    await query(pair.source.url, 'ANALYZE');
    // a 15 publisher sends every change, whatever its origin
    await replicatePair(pair, { origin: 'any' });
    await AgentProcess.start(pair.target.url, [], { STEEP_REPL_VERIFY_ROWS_PER_RANGE: '200' });
  });
  afterAll(async () => {
    await stopAllAgents();
    await pair?.drop().catch(() => undefined);
    await own?.remove();
  });

  async function verify(): Promise<any> {
    const [{ r: started }] = await query(pair.target.url, 'SELECT steep_repl.start_verify($1) AS r', [pair.target.id]);
    return waitUntil(
      'the verify to end',
      async () => {
        const [{ r }] = await query(pair.target.url, 'SELECT steep_repl.verify_status($1) AS r', [started.verify_id]);
        return !['queued', 'running'].includes(r.state) && r;
      },
      30000,
      100,
    );
  }

  it('equal data verifies equal across 15 and 18; a difference made on the node is found', async () => {
    expect((await query(pair.source.url, 'SHOW server_version_num'))[0].server_version_num).toMatch(/^15/);
    const equal = await verify();
    expect({ state: equal.state, error: equal.error }).toEqual({ state: 'equal', error: null });
    expect(equal.tables.map((t: any) => [t.label, t.status])).toEqual([
      ['"Sales ünit"."Order ""Items"" é"', 'equal'],
      ['public.accounts', 'equal'],
      ['public.docs', 'equal'],
      ['public.events', 'equal'],
      ['public.kinds', 'equal'],
      ['public.slow', 'equal'],
    ]);
    expect(equal.tables.find((t: any) => t.label === 'public.kinds')).toMatchObject({ rows_compared: 500, compared: 'key_ranges' });

    await waitCaughtUp(pair);
    await query(pair.target.url, "SET session_replication_role = replica; UPDATE public.kinds SET x = '<e>changed</e>' WHERE n = 11.00");
    const differs = await verify();
    expect(differs.state).toBe('differs');
    const kinds = differs.tables.find((t: any) => t.label === 'public.kinds');
    expect(kinds).toMatchObject({ status: 'differs', rows_different: 1, rows_missing: 0, rows_extra: 0 });
    const [{ id }] = await query(pair.source.url, 'SELECT id::text FROM public.kinds WHERE n = 11.00');
    expect(kinds.differences).toEqual([{ key: { id }, kind: 'different' }]);
    expect((await query(pair.target.url, 'SELECT init_state FROM steep_repl.nodes WHERE node_id = $1', [pair.target.id]))[0].init_state).toBe('diverged');
  });
});
