// Checks that a registered peer accepts connections and records its health.
// A cancel request aborts the attempt and is recorded as node.probe_cancelled;
// an agent shutdown aborts it too and leaves the job to run again.
import { QueryConfig } from 'pg';
import { connectTimeoutMs, connectToNode } from '../../lib/connection';
import { emitEvent } from '../../lib/sql/emitEvent';
import { getNode } from '../../lib/sql/getNode';
import { SteepTask } from '../task';

export const probe_node: SteepTask = async (payload, ctx) => {
  const nodeId = String(payload.node_id);
  const node = await getNode(ctx.helpers, nodeId);
  let status = 'healthy';
  let error: string | undefined;
  try {
    const peer = await connectToNode(node, 'steep-repl probe', AbortSignal.any([ctx.cancel, ctx.shutdown]));
    try {
      // A server that accepts and never answers must not hold the job forever.
      await peer.query({ text: 'SELECT 1', query_timeout: connectTimeoutMs() } as QueryConfig);
    } finally {
      await peer.end();
    }
  } catch (err) {
    if (ctx.shutdown.aborted) throw err;
    if (ctx.cancel.aborted) {
      const reason = (ctx.cancel.reason as Error)?.message ?? 'cancelled';
      await emitEvent(ctx.helpers, 'node.probe_cancelled', nodeId, { job_id: ctx.jobId, reason });
      ctx.logger.log('info', 'node.probe_cancelled', { node_id: nodeId, job_id: ctx.jobId, reason });
      return;
    }
    status = 'unreachable';
    error = (err as Error).message;
  }
  await ctx.helpers.query(
    `UPDATE steep_repl.nodes SET status = $2, last_seen = CASE WHEN $2 = 'healthy' THEN now() ELSE last_seen END
     WHERE node_id = $1`,
    [nodeId, status],
  );
  ctx.logger.log(status === 'healthy' ? 'info' : 'warn', 'node.probed', { node_id: nodeId, status, error });
};
