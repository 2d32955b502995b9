// What the source says about itself in its own steep_repl registry, when it
// has one: a source that was itself initialized from this target already
// holds the same data, so the reverse direction must not copy it again.
import { Client } from 'pg';

export interface SourceSelf {
  node_id: string;
  init_state: string;
  init_source_node: string | null;
}

export async function readSourceSelf(source: Client): Promise<SourceSelf | undefined> {
  const { rows } = await source.query("SELECT to_regclass('steep_repl.nodes') IS NOT NULL AS installed");
  if (!rows[0].installed) return undefined;
  const self = await source.query('SELECT node_id, init_state, init_source_node FROM steep_repl.nodes WHERE is_local');
  return self.rows[0];
}

// The reverse of an established pair: the source is synchronized from the
// target. Its copy would only duplicate rows the target already has.
export function isReverseOfPair(self: SourceSelf | undefined, sourceId: string, targetId: string): boolean {
  return !!self && self.node_id === sourceId && self.init_source_node === targetId && self.init_state === 'synchronized';
}
