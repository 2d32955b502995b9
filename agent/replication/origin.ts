// Changes made under a replication origin are marked with it in the WAL;
// subscriptions with origin = none (every steep-repl subscription) skip
// them, so what runs here never reaches a peer subscribed to this node.
import { Client } from 'pg';
import { TableName } from '../../lib/sql/queryable';
import { literal, qualified } from './quoting';
import { existingRelations } from './target-tables';

// This database's own origin for local changes that must not replicate;
// session n > 0 of a copy that runs several at once gets one of its own
// (a server before 18 lets only one session at a time set up an origin).
async function originName(target: Client, session: number): Promise<string> {
  const { rows } = await target.query('SELECT oid::int8 AS oid FROM pg_database WHERE datname = current_database()');
  return `steep_repl_local_${rows[0].oid}${session ? `_${session}` : ''}`;
}

async function localOrigin(target: Client, session = 0): Promise<string> {
  const origin = await originName(target, session);
  try {
    await target.query(
      `SELECT pg_replication_origin_create(${literal(origin)})
       WHERE NOT EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = ${literal(origin)})`,
    );
  } catch (err) {
    // created by a concurrent session
    if ((err as { code?: string }).code !== '23505') throw err;
  }
  return origin;
}

// For a session that only writes what must not replicate (a copy worker's),
// until originSessionEnd.
export async function originSessionStart(target: Client, session: number): Promise<void> {
  await target.query('SELECT pg_replication_origin_session_setup($1)', [await localOrigin(target, session)]);
}

export async function originSessionEnd(target: Client): Promise<void> {
  await target.query('SELECT pg_replication_origin_session_reset()');
}

// A copy worker's origin once no session uses it: its progress means
// nothing to anyone, and an origin that has progress holds one of the
// server's replication origin states (max_active_replication_origins,
// max_replication_slots before 18) until it is dropped, which
// subscriptions need. Not dropping it (a role without the right) is harmless.
export async function dropSessionOrigin(target: Client, session: number): Promise<void> {
  const origin = await originName(target, session);
  await target
    .query('SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname = $1', [origin])
    .catch(() => undefined);
}

export async function withoutReplicating<T>(target: Client, work: () => Promise<T>): Promise<T> {
  await target.query('SELECT pg_replication_origin_session_setup($1)', [await localOrigin(target)]);
  try {
    return await work();
  } finally {
    await target.query('SELECT pg_replication_origin_session_reset()');
  }
}

// Empties the tables that exist here; a peer keeps its rows.
export async function truncateWithoutReplicating(target: Client, tables: TableName[]): Promise<void> {
  const existing = await existingRelations(target, tables);
  if (!existing.length) return;
  await withoutReplicating(target, () => target.query(`TRUNCATE ${existing.map(qualified).join(', ')}`));
}
