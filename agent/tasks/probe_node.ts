// Checks that a registered peer accepts connections and records its health.
import { ConnectionTarget, connectToNode } from '../../lib/connection';
import { SteepTask } from '../task';

export const probe_node: SteepTask = async (payload, ctx) => {
  const nodeId = String(payload.node_id);
  const {
    rows: [node],
  } = await ctx.helpers.query<ConnectionTarget & { node_id: string }>(
    'SELECT node_id, host, port, dbname, user_name AS user FROM steep_repl.get_node($1)',
    [nodeId],
  );
  let status = 'healthy';
  let error: string | undefined;
  try {
    const peer = await connectToNode(node, 'steep-repl probe');
    await peer.query('SELECT 1');
    await peer.end();
  } catch (err) {
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
