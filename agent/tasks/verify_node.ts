// node verify's job (steep_repl.start_verify): compares the node's tables
// with the peer it replicates from, lag-aware, and records what persists
// (agent/verify/run.ts). An agent task because it connects to the peer the
// way the agent does (its environment and pgpass) and works from psql.
import { SteepTask } from '../task';
import { runVerify } from '../verify/run';

export const verify_node: SteepTask = async (payload, ctx) => runVerify(Number(payload.verify_id), ctx);
