// node merge's job (steep_repl.start_merge), on node A's agent: analyses
// two nodes that both hold data, or merges them online and leaves them
// replicating both ways (agent/merge/run.ts). A task because it reaches
// node B the way the agent does (its environment and pgpass).
import { runMerge } from '../merge/run';
import { SteepTask } from '../task';

export const merge_nodes: SteepTask = async (payload, ctx) => runMerge(Number(payload.merge_id), ctx);
