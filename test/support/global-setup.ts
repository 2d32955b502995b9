// Starts the PostgreSQL 18 clusters the suite shares (each test file works
// in databases of its own on them) and stops clusters a killed run left.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { claimRunDir, cleanStaleRuns, clusterRoot, createCluster, removeRunSync } from '../../lib/embedded-cluster';

export default async function globalSetup(): Promise<void> {
  const root = clusterRoot('test');
  const stale = await cleanStaleRuns(root);
  if (stale.length) console.log(`\ncleaned ${stale.length} stale test cluster run(s) under ${root}`);
  const runDir = claimRunDir(root);
  const onSignal = () => {
    removeRunSync(runDir);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', () => removeRunSync(runDir));
  const [a, b] = await Promise.all([createCluster(path.join(runDir, 'a')), createCluster(path.join(runDir, 'b'))]);
  process.env.STEEP_TEST_RUN_DIR = runDir;
  process.env.STEEP_TEST_PG_A = String(a.port);
  process.env.STEEP_TEST_PG_B = String(b.port);
  fs.writeFileSync(path.join(runDir, 'clusters.json'), JSON.stringify({ a: a.port, b: b.port }));
}
