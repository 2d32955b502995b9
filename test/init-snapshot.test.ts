// Snapshot init end to end on the suite's shared PostgreSQL 18 clusters
// (the body: test/support/snapshot-init-suite.ts).
import { clusterA, clusterB } from './support/clusters';
import { snapshotInitSuite } from './support/snapshot-init-suite';

jest.setTimeout(120000);

snapshotInitSuite({
  title: 'snapshot init',
  tag: 'init_snap',
  major: 18,
  clusters: async () => ({ source: clusterA(), target: clusterB() }),
});
