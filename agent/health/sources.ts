// The source side of a subscription's lag, asked by the agent of the
// target: the source's current WAL position, whether its slot for the
// subscription exists and where it is confirmed. One session per source
// node, kept between rounds (a session costs the source a backend; a
// connection each round would cost it a fork); a session that fails is
// dropped and made again at the next round. One query per source node, for
// all its slots.
import { Client, QueryConfig } from 'pg';
import { connect, ConnectionTarget, nodeClientConfig, redactSecrets } from '../../lib/connection';
import type { SourceFacts } from '../../lib/sql/observeReplication';
import type { ReplicationSource } from '../../lib/sql/replicationSources';

export const probeConnectTimeoutMs = 3000;
export const probeQueryTimeoutMs = 5000;

// The flush position (on a standby the position it replayed to): what a
// walsender can send. Not the insert position: after a WAL switch on an
// idle server that sits past the new page's header for good, and a quiet
// pair would show 40 bytes of lag growing older every round.
// slot_exists false: the source was reached and has no slot of that name.
const positionsSql = `
  SELECT CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()
              ELSE pg_catalog.pg_current_wal_flush_lsn() END::text AS current_lsn,
         coalesce((SELECT jsonb_object_agg(s.slot_name, jsonb_build_object('confirmed_flush_lsn', s.confirmed_flush_lsn::text, 'active', s.active))
                     FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = ANY ($1::text[])), '{}') AS slots`;

interface Session {
  client: Client;
  where: string;
}

export class SourceProbes {
  private readonly sessions = new Map<string, Promise<Session>>();

  constructor(private readonly signal: AbortSignal) {}

  // Every source asked at once; a source that cannot be asked gives each of
  // its subscriptions {error}. Sessions of sources no longer listed end.
  async probe(sources: readonly ReplicationSource[]): Promise<{ facts: Record<string, SourceFacts>; asked: number; failed: number }> {
    const bySource = new Map<string, ReplicationSource[]>();
    for (const s of sources) {
      const key = JSON.stringify([s.source_node, s.host, s.port, s.dbname, s.user_name]);
      bySource.set(key, [...(bySource.get(key) ?? []), s]);
    }
    for (const key of [...this.sessions.keys()]) if (!bySource.has(key)) void this.drop(key);
    const facts: Record<string, SourceFacts> = {};
    let failed = 0;
    await Promise.all(
      [...bySource].map(async ([key, subs]) => {
        const answer = await this.ask(key, subs);
        if ('error' in Object.values(answer)[0]) failed += 1;
        for (const [name, value] of Object.entries(answer)) facts[name] = value;
      }),
    );
    return { facts, asked: bySource.size, failed };
  }

  async close(): Promise<void> {
    await Promise.all([...this.sessions.keys()].map((key) => this.drop(key)));
  }

  private async ask(key: string, subs: ReplicationSource[]): Promise<Record<string, SourceFacts>> {
    const target: ConnectionTarget = { host: subs[0].host, port: subs[0].port, dbname: subs[0].dbname, user: subs[0].user_name ?? undefined };
    const where = `${target.host}:${target.port}/${target.dbname}`;
    const slots = [...new Set(subs.map((s) => s.slot_name).filter((n): n is string => !!n))];
    try {
      const { client } = await this.session(key, target, where);
      const { rows } = await client.query({ text: positionsSql, values: [slots], query_timeout: probeQueryTimeoutMs } as QueryConfig);
      const found = rows[0].slots as Record<string, { confirmed_flush_lsn: string | null; active: boolean }>;
      return Object.fromEntries(
        subs.map((s) => {
          const slot = s.slot_name ? found[s.slot_name] : undefined;
          const fact: SourceFacts = {
            current_lsn: rows[0].current_lsn,
            confirmed_flush_lsn: slot?.confirmed_flush_lsn ?? null,
            slot_active: slot?.active ?? null,
            // null: the subscription names no slot (slot_name = NONE), none to look for
            slot_exists: s.slot_name ? slot !== undefined : null,
          };
          return [s.subscription, fact];
        }),
      );
    } catch (err) {
      // after a timeout or an error the session's state is unknown: a new one next round
      void this.drop(key);
      if (this.signal.aborted) throw err;
      const error = describeFailure(err as Error, where);
      return Object.fromEntries(subs.map((s) => [s.subscription, { error }]));
    }
  }

  private session(key: string, target: ConnectionTarget, where: string): Promise<Session> {
    let session = this.sessions.get(key);
    if (!session) {
      const config = {
        ...nodeClientConfig(target, 'steep-repl agent health probe'),
        connectionTimeoutMillis: probeConnectTimeoutMs,
        keepAlive: true,
        keepAliveInitialDelayMillis: 10000,
      };
      session = connect(config, where, this.signal).then((client) => {
        client.once('end', () => this.sessions.get(key) === session && this.sessions.delete(key));
        return { client, where };
      });
      // a failed attempt is not kept: the next round tries again
      session.catch(() => this.sessions.get(key) === session && this.sessions.delete(key));
      this.sessions.set(key, session);
    }
    return session;
  }

  private async drop(key: string): Promise<void> {
    const session = this.sessions.get(key);
    this.sessions.delete(key);
    const s = await session?.catch(() => undefined);
    await endWithin(s?.client);
  }
}

// Ends a session, and destroys its socket when the server does not
// acknowledge the goodbye within ms (a source that stopped answering).
export async function endWithin(client: Client | undefined, ms = 1000): Promise<void> {
  if (!client) return;
  let timer: NodeJS.Timeout | undefined;
  const ended = client.end().catch(() => undefined);
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), ms)));
  if (await Promise.race([ended.then(() => false), late])) {
    (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  }
  clearTimeout(timer);
}

// One line for observe_replication's reason ("cannot reach source node A to
// measure lag: <this>"): where, and what went wrong; never a password.
function describeFailure(err: Error, where: string): string {
  if (/Query read timeout/i.test(err.message)) return `${where} did not answer within ${probeQueryTimeoutMs / 1000} s`;
  // ConnectionError says where already ("cannot connect to h:p/db: …")
  if (err.message.includes(where)) return redactSecrets(err.message);
  return `${where}: ${redactSecrets(err.message)}`;
}
