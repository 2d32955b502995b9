// Snapshot init end to end on a PostgreSQL 15 pair of its own (Debian's
// postgresql-15 binaries; without them this file fails saying so). Same
// assertions as on 18 (test/support/snapshot-init-suite.ts), except that
// the bidirectional step is refused: origin = none needs 16 on both nodes.
import { startOwnClusters } from './support/clusters';
import { snapshotInitSuite } from './support/snapshot-init-suite';

jest.setTimeout(120000);

snapshotInitSuite({
  title: 'snapshot init on PostgreSQL 15',
  tag: 'init_snap15',
  major: 15,
  clusters: async () => {
    const own = await startOwnClusters('test-init-snapshot-pg15', ['source', 'target'], { versions: { source: 15, target: 15 } });
    return { source: own.clusters.source, target: own.clusters.target, remove: own.remove };
  },
});
