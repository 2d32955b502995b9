// Two-phase apply's switch from the snapshot's publication to the pair's
// (docs/init.md, "The switch to the pair's publication"): a transaction on
// the source that wrote before the pair's publication existed and commits
// only after the apply's subscription streams must still reach the target.
// pgoutput resolves publication names with the catalog as of each change:
// streamed through the pair's publication from the start, the transaction
// does not arrive whole (switched without the wait, this test loses its
// first row on 18 and the whole transaction with a 15 source). The apply
// keeps the snapshot's publication until such transactions have ended. On
// 18 (the suite's clusters) and with a PostgreSQL 15 source (a cluster of
// this file's own, on Debian's binaries).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { Cluster } from '../lib/embedded-cluster';
import { clusterA, clusterB, OwnClusters, query, startOwnClusters } from './support/clusters';
import { contentHashes, createInitPair, InitPair, initStatus, waitCaughtUp } from './support/init-pair';
import { AgentProcess, stopAllAgents } from './support/processes';
import { generateSnapshot, startApply, waitSynchronized } from './support/snapshot-apply';
import { waitUntil } from './support/wait';

jest.setTimeout(180000);

describe('two-phase apply: the switch to the pair publication', () => {
  let own: OwnClusters<'pg15'>;
  let pg15: Cluster;
  const pairs: InitPair[] = [];
  const open: Client[] = [];
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'steep-snapshot-switch-'));

  beforeAll(async () => {
    own = await startOwnClusters('test-snapshot-switch', ['pg15'], { versions: { pg15: 15 } });
    pg15 = own.clusters.pg15;
  });
  afterAll(async () => {
    await Promise.all(open.map((c) => c.end().catch(() => undefined)));
    await stopAllAgents();
    for (const pair of pairs) await pair.drop().catch(() => undefined);
    await own?.remove();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const spanningTransaction = async (tag: string, sourceCluster: () => Cluster, killWhileWaiting = false) => {
    const pair = await createInitPair({ tag, sourceCluster: sourceCluster(), targetCluster: clusterB(), rows: 3000, sourceId: `Sourçe ${tag}`, targetId: `Tärget ${tag}` });
    pairs.push(pair);
    await AgentProcess.start(pair.source.url);
    const id = await generateSnapshot(pair.source, path.join(root, tag), { compression: 'gzip' });

    // written before the apply makes the pair's publication, committed after its subscription streams
    const writer = new Client({ connectionString: pair.source.url });
    writer.on('error', () => undefined);
    await writer.connect();
    open.push(writer);
    await writer.query('BEGIN');
    await writer.query("INSERT INTO public.accounts VALUES (5000001, 1, 'before the publication')");

    let agent = await AgentProcess.start(pair.target.url);
    await startApply(pair.target, pair.source, id);
    const [{ publication }] = await query(pair.source.url, 'SELECT publication FROM steep_repl.snapshots WHERE snapshot_id = $1', [id]);
    await waitUntil('the subscription streaming the snapshot publication', async () => {
      const s = await initStatus(pair.target);
      if (s.state === 'failed') throw new Error(s.progress.error);
      const subs = await query(pair.target.url, 'SELECT subpublications FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())');
      return subs[0]?.subpublications?.[0] === publication;
    });
    // it waits for the transaction: still on the snapshot's publication a while later
    await new Promise((r) => setTimeout(r, 1500));
    expect((await initStatus(pair.target)).state).toBe('copying');
    expect(agent.lines.find((l) => l.event === 'init.publication_switched')).toBeUndefined();
    if (killWhileWaiting) {
      // the next agent finds the subscription and waits as this one did
      await agent.stop('SIGKILL');
      agent = await AgentProcess.start(pair.target.url);
      await waitUntil('the next agent at the switch', async () => agent.lines.some((l) => l.event === 'init.job_started'));
      await new Promise((r) => setTimeout(r, 1000));
      expect((await initStatus(pair.target)).state).toBe('copying');
    }

    await writer.query("INSERT INTO public.accounts VALUES (5000002, 2, 'after the subscription')");
    await writer.query('COMMIT');
    await writer.end();
    await waitSynchronized(pair.target, agent);
    await waitCaughtUp(pair);
    expect(await query(pair.target.url, 'SELECT id, note FROM public.accounts WHERE id > 5000000 ORDER BY id')).toEqual([
      { id: 5000001, note: 'before the publication' },
      { id: 5000002, note: 'after the subscription' },
    ]);
    expect(await contentHashes(pair.target.url)).toEqual(await contentHashes(pair.source.url));
    expect(agent.lines.find((l) => l.event === 'init.publication_switched')).toMatchObject({ from: publication, to: pair.replicationName });
    const subs = await query(pair.target.url, 'SELECT subpublications FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())');
    expect(subs).toEqual([{ subpublications: [pair.replicationName] }]);
    // the servers are shared: its subscription and databases go now
    await stopAllAgents();
    await pair.drop();
    pairs.splice(pairs.indexOf(pair), 1);
  };

  it('PostgreSQL 18: a transaction open across the pair publication reaches the target whole, the agent SIGKILLed while it waits', async () => {
    await spanningTransaction('switch_18', clusterA, true);
  });

  it('PostgreSQL 15 source: the same', async () => {
    await spanningTransaction('switch_15', () => pg15);
  });
});
