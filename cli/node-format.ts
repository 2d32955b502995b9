import { initPercentAndEta } from '../lib/format';
import { NodeOverview } from '../lib/sql/listNodes';

// "67% ETA 14m02s from node_a", or "-" when no initialization runs.
export function formatInit(n: Pick<NodeOverview, 'init_in_progress' | 'overall_percent' | 'eta_seconds' | 'init_source_node'>): string {
  if (!n.init_in_progress) return '-';
  return `${initPercentAndEta(n.overall_percent, n.eta_seconds)}${n.init_source_node ? ` from ${n.init_source_node}` : ''}`;
}
