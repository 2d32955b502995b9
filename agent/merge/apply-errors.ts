// After the exchange, a key inserted on both nodes after their merge points
// reaches each node as an insert of a row it already has: both apply
// workers fail on it, again and again, and nothing replicates any more.
// pg_stat_subscription_stats counts those failures; a merge that sees them
// rise stops and says so instead of waiting out its timeout.
import { Client } from 'pg';
import { quoteIdent } from '../../lib/identifiers';
import { MergeError } from './errors';
import { PairNames } from './names';
import { PeerSession } from './sessions';

// failures of one apply worker that end the wait: a worker retries about
// every wal_retrieve_retry_interval (5 s), so a failing one reaches this in
// some 10 s, and an error that happened once (a lost connection) does not
const failuresToStop = 3;

async function applyErrors(client: Client, subscription: string): Promise<number> {
  const { rows } = await client.query(
    `SELECT s.apply_error_count::int8 AS n FROM pg_catalog.pg_stat_subscription_stats s
     JOIN pg_catalog.pg_subscription p ON p.oid = s.subid
     WHERE p.subname = $1 AND p.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())`,
    [subscription],
  );
  return Number(rows[0]?.n ?? 0);
}

export class ApplyWatch {
  private constructor(
    private readonly a: Client,
    private readonly b: PeerSession,
    private readonly names: PairNames,
    private readonly nodes: { a: string; b: string },
    // counts when the watch began: a resumed merge's subscriptions may have failed before
    private readonly before: { a: number; b: number },
  ) {}

  static async start(a: Client, b: PeerSession, names: PairNames, nodes: { a: string; b: string }): Promise<ApplyWatch> {
    const before = { a: await applyErrors(a, names.ba), b: await b.run((cb) => applyErrors(cb, names.ab)) };
    return new ApplyWatch(a, b, names, nodes, before);
  }

  // Throws (kind concurrent) once an apply worker failed failuresToStop times since the watch began.
  async check(): Promise<void> {
    const failing: string[] = [];
    const onA = (await applyErrors(this.a, this.names.ba)) - this.before.a;
    const onB = (await this.b.run((cb) => applyErrors(cb, this.names.ab))) - this.before.b;
    if (onB >= failuresToStop) failing.push(`node ${quoteIdent(this.nodes.b)} (subscription ${this.names.ab}, ${onB} errors)`);
    if (onA >= failuresToStop) failing.push(`node ${quoteIdent(this.nodes.a)} (subscription ${this.names.ba}, ${onA} errors)`);
    if (!failing.length) return;
    throw new MergeError(
      `replication fails to apply on ${failing.join(' and ')}: rows were written on both nodes after the merge points, ` +
        'most likely the same key inserted on both; the rows exchanged stay and the subscriptions are kept',
      'concurrent',
      'the server log of each failing node names the key; run the merge again: it compares the nodes anew from new merge points and resolves those rows by its strategy',
    );
  }
}
