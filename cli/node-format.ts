import { duration } from './render';

export interface NodeInitSummary {
  init_in_progress: boolean;
  overall_percent: string | number | null;
  eta_seconds: number | null;
  init_source_node: string | null;
}

// "67% ETA 14m02s from node_a", or "-" when no initialization runs.
export function formatInit(n: NodeInitSummary): string {
  if (!n.init_in_progress) return '-';
  const percent = n.overall_percent === null ? '0' : Number(n.overall_percent).toFixed(0);
  const eta = n.eta_seconds === null ? '' : ` ETA ${duration(n.eta_seconds)}`;
  return `${percent}%${eta}${n.init_source_node ? ` from ${n.init_source_node}` : ''}`;
}
