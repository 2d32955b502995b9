// A synchronized pair for the verify tests, made directly rather than by an
// init (seconds saved in every file): the pair's publication on the source
// and subscription on the target under the names an init gives them,
// PostgreSQL's table sync for the copy, then the target's registry walked
// through the init states to synchronized. Verify only needs what an init
// leaves: the subscription, its slot, the state and the source node.
import { escapeIdentifier, escapeLiteral } from 'pg';
import { nodeConninfo } from '../../lib/connection';
import { query } from './clusters';
import type { InitPair } from './init-pair';
import { waitUntil } from './wait';

export async function replicatePair(pair: InitPair, options: { origin?: 'none' | 'any' } = {}): Promise<void> {
  const { source, target, replicationName: name } = pair;
  const tables = (await query(source.url, 'SELECT label FROM steep_repl.replicated_tables()')).map((r) => r.label);
  await query(source.url, `CREATE PUBLICATION ${escapeIdentifier(name)} FOR TABLE ${tables.join(', ')} WITH (publish_via_partition_root = true)`);
  const conninfo = nodeConninfo({ host: source.cluster.host, port: source.cluster.port, dbname: source.name, user: source.cluster.user });
  await query(
    target.url,
    `CREATE SUBSCRIPTION ${escapeIdentifier(name)} CONNECTION ${escapeLiteral(conninfo)} PUBLICATION ${escapeIdentifier(name)}
     WITH (copy_data = true, slot_name = ${escapeLiteral(name)}, origin = ${options.origin ?? 'none'})`,
  );
  await waitUntil(
    'the table sync of every table',
    async () => {
      const states = await query(target.url, 'SELECT sync_state FROM steep_repl.subscription_tables($1)', [name]);
      return states.length === tables.length && states.every((s) => s.sync_state === 'r');
    },
    60000,
    100,
  );
  await query(target.url, 'UPDATE steep_repl.nodes SET init_source_node = $2 WHERE node_id = $1', [target.id, source.id]);
  for (const state of ['preparing', 'copying', 'catching_up', 'synchronized']) {
    await query(target.url, 'SELECT steep_repl.transition($1, $2, $3)', [target.id, state, { reason: 'test pair made by hand' }]);
  }
}
