// Direct init end to end: steep-repl's own copy engine on one exported
// snapshot, tables split into parts, while a writer keeps writing to the
// source; the target's agent as a real process.
import { clusterA, clusterB, query } from './support/clusters';
import { contentHashes, createInitPair, InitPair, initStatus, sourceWrites, userTables, waitCaughtUp } from './support/init-pair';
import { AgentProcess, stopAllAgents } from './support/processes';
import { waitUntil } from './support/wait';
import { startWriter } from './support/writer';

jest.setTimeout(180000);

// No usable key: split by ctid ranges; replicates through REPLICA IDENTITY FULL.
const noKeySql = `
  CREATE TABLE public."No Key" (a int NOT NULL, b text NOT NULL);
  ALTER TABLE public."No Key" REPLICA IDENTITY FULL;
`;
const tables = [...userTables, 'public."No Key"'];

describe('direct init', () => {
  let pair: InitPair;
  let agent: AgentProcess;

  beforeAll(async () => {
    pair = await createInitPair({ tag: 'init_direct', sourceCluster: clusterA(), targetCluster: clusterB(), rows: 60000 });
    await query(pair.source.url, noKeySql);
    await query(pair.target.url, noKeySql);
    await query(pair.source.url, `INSERT INTO public."No Key" SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 40000) g; ANALYZE`);
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
    const parts = await query(pair.target.url, 'SELECT leaf_name, split, part_count, state, copies FROM steep_repl.init_parts ORDER BY 1, part_no');
    console.log(parts);
    expect(parts.every((p) => p.state === 'done' && p.copies === 1)).toBe(true);
    expect(parts.some((p) => p.split === 'key' && p.part_count >= 4)).toBe(true);
    expect(parts.some((p) => p.split === 'ctid')).toBe(true);
  });
});
